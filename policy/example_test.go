package policy_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/bindguard/bindguard/policy"
)

func ExampleParse() {
	src := []byte(`
version: 1
networks:
  monitoring: [10.1.1.103]
services:
  - name: core
    port: 8001
    address: 127.0.0.1
    access: localhost_only
  - name: zabbix-agent
    port: 10050
    address: 0.0.0.0
    access: restricted
    allow: [monitoring]
`)
	p, err := policy.Parse("bindguard.yaml", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range p.Services {
		fmt.Println(s.Name, s.Protocol, s.Address, s.Port, s.Access, s.AllowPrefixes)
	}
	// Output:
	// core tcp 127.0.0.1 8001 localhost_only []
	// zabbix-agent tcp 0.0.0.0 10050 restricted [10.1.1.103/32]
}

// Every problem in a file is reported at once, each with its line, column and field.
func ExampleInvalidError() {
	src := []byte(`
version: 1
services:
  - name: redis
    port: 6379
    address: 0.0.0.0
    access: localhost_only
  - name: web
    port: 0x50
    access: public
`)
	_, err := policy.Parse("bindguard.yaml", src)
	var inv *policy.InvalidError
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// bindguard.yaml:6:14: services[0].address: 0.0.0.0 (every IPv4 interface) is not a loopback address; a localhost_only service must bind 127.0.0.0/8 or ::1
	// bindguard.yaml:9:11: services[1].port: 0x50 is not a port: ports are plain decimal numbers 1-65535 (no sign, hex, octal, binary or "_")
}

func ExampleService_PermitsBind() {
	p, _ := policy.Parse("p.yaml", []byte("version: 1\nservices:\n  - {name: core, port: 8001, access: localhost_only}\n"))
	core, _ := p.Lookup("core")
	for _, a := range []string{"127.0.0.1", "::1", "0.0.0.0", "10.1.1.120"} {
		fmt.Println(a, core.PermitsBind(netip.MustParseAddr(a)))
	}
	// Output:
	// 127.0.0.1 true
	// ::1 true
	// 0.0.0.0 false
	// 10.1.1.120 false
}

func ExampleLookupCatalogue() {
	e, _ := policy.LookupCatalogue(policy.TCP, 6379)
	fmt.Println(e.Name, e.Access, e.Category, e.Category.Sensitive())
	// Output: redis localhost_only cache true
}
