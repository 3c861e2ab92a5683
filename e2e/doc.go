// Package e2e tests switchboard end to end: the real binary, built once by
// TestMain, between SIPp acting as the carrier trunk and SIPp acting as the
// PBX, over loopback, with call records read back through the HTTP API.
//
// The scenarios live in ../sipp. The tests need sipp on PATH: without it they
// skip, unless the environment variable CI is set, in which case they fail.
package e2e
