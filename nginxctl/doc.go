// Package nginxctl publishes the apps' virtual hosts through a real Nginx,
// per environment, in safe batches.
//
// Each stage is a function with typed values between them: a Source gives
// a Model (snapshot.go builds it from the catalog); Model.Sanitize drops
// what does not validate, keeping a Rejection for each; Render writes the
// model as deterministic Nginx config (a geo block classifies clients, maps
// pick a backend per env and host); an Applier checks the text with
// nginx -t, renames it into place, reloads Nginx and waits until Nginx
// serves the new config's generation; on any failure the previous config
// stays live. A Batch decides when changes are due (consul-template's
// wait { min, max }), and the Controller strings the stages together and
// serves its state over HTTP.
package nginxctl
