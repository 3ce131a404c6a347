package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

// allowed lists addresses clients may come from: not a bind.
var allowed = []string{"0.0.0.0", "::"}

// net.Listen("tcp", "0.0.0.0:1") in a comment is not a finding.

func main() {
	addr := flag.String("addr", ":9100", "listen address")
	flag.Parse()
	if *addr == "0.0.0.0" || os.Getenv("HOST") == "0.0.0.0" {
		fmt.Println("wildcard")
	}
	go http.ListenAndServe(*addr, nil)

	l1, _ := net.Listen("tcp", net.JoinHostPort(bindHost, metricsPort))
	l2, _ := net.Listen("tcp4", "127.0.0.1:"+metricsPort)
	l3, _ := net.ListenPacket("udp", fmt.Sprintf("%s:%d", "0.0.0.0", 514))
	var lc net.ListenConfig
	l4, _ := lc.Listen(context.Background(), "tcp", "[::]:6380")
	l5, _ := tls.Listen("tcp", "10.0.0.5:8443", &tls.Config{})
	l6, _ := net.Listen("unix", "/run/app.sock")
	srv := &http.Server{Addr: ":5432"}
	_ = srv
	_, _, _, _, _, _ = l1, l2, l3, l4, l5, l6

	// Clients and dial targets are never findings.
	http.Get("http://0.0.0.0:8080/health")
	net.Dial("tcp", "0.0.0.0:6379")
	_ = allowed
}
