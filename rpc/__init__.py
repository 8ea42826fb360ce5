"""gRPC plumbing both daemons share: serving a servicer with health and reflection, and mapping a
package's exceptions to status codes. Transport only: no domain decisions live here."""
