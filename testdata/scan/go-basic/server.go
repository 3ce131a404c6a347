package main

import "net/http"

func admin() {
	var srv http.Server
	srv.Addr = "0.0.0.0:8088"
	s2 := &http.Server{}
	s2.Addr = "127.0.0.1:8089"
	_ = srv.ListenAndServe()
	_ = s2.ListenAndServe()
}
