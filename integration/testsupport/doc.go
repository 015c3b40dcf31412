// Package testsupport holds the helpers every test suite of this module
// shares: requests with their bodies read, polling for eventual state, a
// DNS stub server, the reference Sonyflake that IDs are decoded with, the
// repository root, and skips that CI does not let pass silently.
//
// It depends on no other package of this module, so any package's tests,
// internal ones included, can use it.
package testsupport
