// Package httpapi is the HTTP API of a valora instance: /metrics, /healthz,
// /readyz and the customer lookup /v1/customers/{id} (Handler), and the
// server that carries it (Config: TLS, bearer token, limits). It owns the
// HTTP side only: routes, status codes, JSON bodies and headers, the guard
// in front of the lookup, and the server's limits. What it reports (stall,
// readiness, a customer's task, owner and committed state) it asks of an
// Instance, which the processor implements; it imports neither the
// processor nor the store, so it is tested alone against a fake instance,
// and the commands wire the two.
//
// # Contract
//
// Every answer is JSON, errors as {"error": "..."}; CustomerView is the
// lookup's body. A lookup of a customer that another instance owns
// answers 421 with the owner's advertised URL when there is one. The lookup
// is the only endpoint that shows personal data: Config can turn it off
// (403), require a bearer token (401, compared in constant time on SHA-256
// digests) and cap how many run at once (503 with Retry-After beyond it);
// /metrics, /healthz and /readyz stay open.
//
// # Configuration
//
// Config.Validate applies the defaults, checks every field and reads the
// token and the certificate, each error naming its field
// (http_token_file for --http-token-file, and so on), so that a bad value
// stops the program at start. Handler and Server refuse a Config that
// Validate has not accepted, rather than serve an unguarded lookup or
// plain HTTP in place of HTTPS.
//
// # Goroutines, owners and locks
//
// The package starts no goroutine: handlers run on the http.Server's
// goroutines, whose caller serves and shuts the server down. The
// certificate is reloaded on the handshake goroutine that needs it, when
// the certificate file's modification time has changed, under
// certReloader.mu, which guards only the certificate and is held across
// the file reads, never across a wait on another goroutine or the network;
// a failed reload keeps the previous certificate. The lookup's concurrency
// cap is a buffered channel of slots taken without waiting. A lookup waits
// on the network only in Instance.Owner, bounded by ownerTimeout and the
// request's context.
package httpapi
