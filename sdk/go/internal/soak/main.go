// Command soak drives the failure-injection phases of sdk/integration.sh
// against a real Boost server. It is not part of the SDK's API.
//
//	soak send   -url U -key K -n N -rate R -out FILE [...]   send N events through the Go SDK
//	soak verify -url U -key K -project P -admin T FILE...    read every recorded event back
//	soak proxy  -target U [-fail-every N] [-drop-every M]     a fault-injecting proxy
//
// send records, for every event, what was sent and the server ids reported
// through Config.OnDelivered (one JSON object per line); it prints
// "progress enqueued=E delivered=D" lines while it runs, so that a script
// can kill the server at a chosen point, and exits non-zero if any event
// was reported lost, any request was retried before the server's
// Retry-After had elapsed, or an expected kind of failure never happened.
//
// verify is shared by the Go and Node senders (sdk/js/integration/soak.mjs
// writes the same records): every messageId must have been given exactly
// one server id, all ids must differ, every event must read back through
// the admin API as processed with exactly the properties sent, and, with
// -resend, resending every record with its messageId must answer the same
// ids.
//
// proxy forwards to the server and, counting batch requests per client
// (the first word of the User-Agent), answers every fail-every-th one with
// 503 + Retry-After itself, and forwards every drop-every-th one but closes
// the client's connection instead of answering: the server has stored the
// events, the client does not know it and must resend them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "send":
		err = send(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	case "proxy":
		err = proxy(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak %s: FAIL: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: soak send|verify|proxy [flags] (see the package comment)")
	os.Exit(2)
}
