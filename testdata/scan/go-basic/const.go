package main

const (
	bindHost    = "0.0.0.0"
	metricsPort = "9200"
)
