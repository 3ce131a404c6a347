module github.com/bindguard/bindguard

go 1.26.8

require (
	github.com/goccy/go-yaml v1.19.0
	github.com/google/go-cmp v0.7.0
)
