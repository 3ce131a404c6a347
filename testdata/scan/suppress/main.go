package main

import "net"

func main() {
	// bindguard:allow go-listen -- the load balancer health check needs it; firewalled to 10.0.0.0/8
	net.Listen("tcp", ":7001")
	net.Listen("tcp", ":7002") // bindguard:allow go-listen
	net.Listen("tcp", ":7003") // bindguard:allow compose-port -- wrong kind does not suppress
}
