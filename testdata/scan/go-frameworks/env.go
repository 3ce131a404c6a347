package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func fromEnv() {
	go http.ListenAndServe(":"+os.Getenv("PORT"), nil)
	go http.ListenAndServe(fmt.Sprintf("127.0.0.1:%s", os.Getenv("PORT")), nil)
	net.Listen("tcp", net.JoinHostPort("0.0.0.0", os.Getenv("PORT")))
	net.Listen("tcp", os.Getenv("ADDR"))
}
