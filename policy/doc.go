// Package policy reads, validates and describes bindguard policies: one YAML file that declares
// every service a host may run, the address and port it may bind, and who may reach it.
//
// Two formats are read, told apart by their shape. The native format:
//
//	version: 1
//	trusted_proxies: [127.0.0.1/32, "::1/128"]  # default when omitted; [] trusts none
//	client_ip_header: X-Forwarded-For           # or Forwarded, X-Real-IP
//	networks:
//	  lan: [10.1.1.0/24]
//	services:
//	  - name: core
//	    protocol: tcp
//	    port: 8001
//	    address: 127.0.0.1
//	    access: localhost_only
//
// and the seed project's config/service-bindings.yaml, whose access names (nginx_only,
// zabbix_server_only, ...) map onto the access classes of this package.
//
// The top-level services are the host scope: the host's own network namespace, and every
// namespace no named scope matches. A native policy may add scopes, each with the services of
// the containers or network namespaces it matches (Scope, Policy.ScopeFor), in the file or in
// drop-ins: LoadDir reads a directory's bindguard.yaml and its bindguard.d/*.yaml, which hold
// scopes only.
//
// # Contract
//
// A policy is security configuration, so loading is strict and fails closed: a file with any
// problem yields no Policy at all, and the error (an *InvalidError) lists every problem at once,
// each as FILE:LINE:COL: FIELD-PATH: message. Unknown or duplicate keys, YAML anchors, aliases,
// merge keys and tags, ports that are not plain decimal 1-65535, addresses that are not IP
// literals, CIDRs with host bits set, allow lists or trusted proxies that cover every address,
// addresses that contradict the access class and overlapping binds are all refused. Work is
// bounded: files over MaxFileSize and nesting beyond MaxNesting are refused before parsing, and
// every check is linear or n log n in the size of the file, but for the overlap of scopes' glob
// patterns, which compares each glob with every pattern of the other scopes within a fixed
// budget of steps.
//
// Builtin returns the embedded catalogue of well-known services, used to judge a host when no
// policy is given.
package policy
