package main

import (
	"net"
	"testing"
)

func TestListen(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
