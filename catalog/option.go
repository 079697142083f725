package catalog

import (
	"fmt"
	"net/netip"
)

// IsPolicyOption reports whether name is one of the policy options that
// PolicyConfig.Option reads.
func IsPolicyOption(name string) bool {
	switch name {
	case "label_prefix", "default_env", "fallback", "env_cidr", "ip_pool", "ip_allow":
		return true
	}
	return false
}

// Option sets one policy option from its name and arguments, as a
// Corefile's `marathon` block writes it and nginxctl's flags take it:
//
//	label_prefix PREFIX
//	default_env ENV
//	fallback PATTERN PARENT     (repeatable: first match wins)
//	env_cidr CIDR ENV           (repeatable: most specific wins)
//	ip_pool CIDR...             (repeatable)
//	ip_allow loopback|link-local|broadcast...
//
// Both consumers call it, so the options have one spelling and one set of
// errors. What needs the whole configuration (cycles, duplicate prefixes)
// is checked by NewPolicy.
func (c *PolicyConfig) Option(name string, args []string) error {
	want := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %d argument(s)", name, usage, len(args))
		}
		return nil
	}
	switch name {
	case "label_prefix":
		if err := want(1, "one prefix"); err != nil {
			return err
		}
		if err := validLabelPrefix(args[0]); err != nil {
			return err
		}
		c.LabelPrefix = args[0]
	case "default_env":
		if err := want(1, "one env name"); err != nil {
			return err
		}
		if err := ValidEnvName(args[0]); err != nil {
			return fmt.Errorf("default_env: %w", err)
		}
		c.DefaultEnv = args[0]
	case "fallback":
		if err := want(2, "PATTERN PARENT"); err != nil {
			return err
		}
		c.Fallback = append(c.Fallback, FallbackRule{Pattern: args[0], Parent: args[1]})
	case "env_cidr":
		if err := want(2, "CIDR ENV"); err != nil {
			return err
		}
		prefix, err := netip.ParsePrefix(args[0])
		if err != nil {
			return fmt.Errorf("env_cidr: invalid CIDR %q: %v", args[0], err)
		}
		if err := ValidEnvName(args[1]); err != nil {
			return fmt.Errorf("env_cidr: %w", err)
		}
		c.CIDRs = append(c.CIDRs, CIDRRule{Prefix: prefix.Masked(), Env: args[1]})
	case "ip_pool":
		if len(args) == 0 {
			return fmt.Errorf("ip_pool takes one or more CIDRs")
		}
		for _, arg := range args {
			prefix, err := netip.ParsePrefix(arg)
			if err != nil {
				return fmt.Errorf("ip_pool: invalid CIDR %q: %v", arg, err)
			}
			c.IPPools = append(c.IPPools, prefix.Masked())
		}
	case "ip_allow":
		if len(args) == 0 {
			return fmt.Errorf("ip_allow takes one or more of loopback, link-local, broadcast")
		}
		for _, arg := range args {
			if _, ok := addrKindOf(arg); !ok {
				return fmt.Errorf("ip_allow: unknown address kind %q (known: loopback, link-local, broadcast)", arg)
			}
		}
		c.IPAllow = append(c.IPAllow, args...)
	default:
		return fmt.Errorf("%q is not a policy option", name)
	}
	return nil
}
