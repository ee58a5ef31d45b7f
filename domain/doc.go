// Package domain holds the vocabulary both sides of Boost share: the domain
// events appended to the log, the envelope they travel in, identifiers and
// the API-key format. It has no dependencies on transport or storage, so the
// write side (commands) and the read side (projections, queries) can both
// import it without importing each other.
package domain
