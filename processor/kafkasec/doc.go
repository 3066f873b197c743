// Package kafkasec owns how valora authenticates to Kafka and encrypts the
// connection: TLS (a CA to trust, an optional client certificate, an
// optional server name) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
// OAUTHBEARER). A Config is plain data; Validate checks it, reading the
// files it names but opening no socket, and Opts turns it into the
// franz-go client options (kgo.DialTLSConfig, kgo.SASL).
//
// # Errors
//
// Validate reports every problem at once. Each error starts with the
// command-line flag of the field (--tls-ca, --sasl-mechanism, ...), so that
// a command can print it as is; the environment variable of a flag is
// VALORA_ followed by the flag name in capitals.
//
// # Secrets
//
// A password or a token is never printed: Config's String, GoString and
// LogValue (slog) show where a secret comes from, never its value, and the
// Secret type redacts itself in fmt, slog and JSON. Secrets come from files
// (or, for the password, from the environment), never from a flag value, so
// that they stay out of shell history and process listings.
//
// # Rotation
//
// The password file and the OAUTHBEARER token file are read again on every
// SASL authentication, and the client certificate and key on every TLS
// handshake that asks for them, so replacing the files takes effect on the
// next connection without a restart. The CA file is read once, by Opts.
// The client does not re-authenticate an open connection on its own unless
// the broker sets a session lifetime (KIP-368, connections.max.reauth.ms).
package kafkasec
