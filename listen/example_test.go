package listen_test

import (
	"errors"
	"fmt"
	"log"
	"net/netip"

	"github.com/bindguard/bindguard/listen"
	"github.com/bindguard/bindguard/policy"
)

// A localhost_only service asked to bind every interface is refused before bind(2).
func ExampleResolve() {
	pol, err := policy.Parse("example.yaml", []byte(`version: 1
services:
  - {name: redis, port: 6379, access: localhost_only}
`))
	if err != nil {
		log.Fatal(err)
	}
	plan, err := listen.Resolve(pol, "redis")
	fmt.Println(plan.Network, plan.Addr, err)

	_, err = listen.Resolve(pol, "redis", listen.WithAddress(netip.MustParseAddr("0.0.0.0")))
	fmt.Println(errors.Is(err, listen.ErrForbidden))
	fmt.Println(err)
	// Output:
	// tcp4 127.0.0.1:6379 <nil>
	// true
	// listen: service redis: tcp 0.0.0.0:6379 refused: localhost_only allows loopback addresses only (127.0.0.0/8, ::1)
}

// A --listen flag for a tool without a policy: 127.0.0.1 unless a wildcard is written out.
func ExampleFlag() {
	f := listen.NewFlag(8000)
	fmt.Println(f)
	fmt.Println(f.Set(":8000"))
	fmt.Println(f.Set("0.0.0.0:8000"), f)
	// Output:
	// 127.0.0.1:8000
	// ":8000": an empty host means every interface; write 127.0.0.1:8000 for this host only, or 0.0.0.0:8000 to choose every interface
	// <nil> 0.0.0.0:8000
}
