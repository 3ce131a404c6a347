package main

// Port-0 listeners: a free-port probe (listened, closed, asked its address: no finding), one
// served and one returned (findings).

import (
	"net"
	"net/http"
)

func getPort() (int, error) {
	listener, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	if err := listener.Close(); err != nil {
		return 0, err
	}
	return listener.Addr().(*net.TCPAddr).Port, nil
}

func serveAny() error {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return err
	}
	defer l.Close()
	return http.Serve(l, nil)
}

func kept() net.Listener {
	l, _ := net.Listen("tcp", ":0")
	return l
}
