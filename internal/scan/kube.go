package scan

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/bindguard/bindguard/policy"
	"github.com/goccy/go-yaml/ast"
)

// The Kubernetes scanner reads every document with apiVersion and kind: Services of type
// LoadBalancer (public unless an internal-load-balancer annotation or private
// loadBalancerSourceRanges make it private) and NodePort (every node interface), externalIPs,
// and in any pod spec hostPort/hostIP and hostNetwork. ClusterIP Services and containerPort
// alone stay on the pod network: not findings. A document in the seed's policy format goes to
// seed.go; other YAML is ignored.

var internalLB = map[string]string{
	"service.beta.kubernetes.io/aws-load-balancer-internal":   "",
	"service.beta.kubernetes.io/azure-load-balancer-internal": "true",
	"networking.gke.io/load-balancer-type":                    "Internal",
	"cloud.google.com/load-balancer-type":                     "Internal",
	"service.beta.kubernetes.io/aws-load-balancer-scheme":     "internal",
}

func scanKube(name string, src []byte) ([]Finding, []Problem) {
	docs, p := parseYAML(name, "yaml", src)
	if p != nil {
		// Not every YAML file is a manifest; only report syntax errors of files that look like one.
		if strings.Contains(string(src), "apiVersion:") && strings.Contains(string(src), "kind:") {
			if strings.Contains(string(src), "{{") {
				return nil, []Problem{{File: name, Msg: "a template (Helm or Go {{ }}), not YAML until rendered: scan the output of helm template instead"}}
			}
			return nil, []Problem{*p}
		}
		return nil, nil
	}
	var out []Finding
	for _, doc := range docs {
		kind := scalar(get(doc, "kind"))
		if kind == "" || scalar(get(doc, "apiVersion")) == "" {
			if fs, ok := scanSeed(name, doc); ok {
				out = append(out, fs...)
			}
			continue
		}
		if kind == "List" {
			for _, it := range items(get(doc, "items")) {
				out = append(out, kubeObject(name, it)...)
			}
			continue
		}
		out = append(out, kubeObject(name, doc)...)
	}
	return out, nil
}

func kubeObject(file string, doc ast.Node) []Finding {
	var out []Finding
	kind := scalar(get(doc, "kind"))
	meta := scalar(get(get(doc, "metadata"), "name"))
	if kind == "Service" {
		spec := get(doc, "spec")
		typ := scalar(get(spec, "type"))
		reach := ReachPublic
		for _, kv := range pairs(get(get(doc, "metadata"), "annotations")) {
			if want, ok := internalLB[scalar(kv.Key)]; ok && (want == "" || strings.EqualFold(scalar(kv.Value), want)) {
				reach = ReachPrivate
			}
		}
		if rs := items(get(spec, "loadBalancerSourceRanges")); len(rs) > 0 {
			all := true
			for _, r := range rs {
				pf, err := netip.ParsePrefix(scalar(r))
				if err != nil || !(pf.Addr().IsPrivate() || pf.Addr().IsLoopback()) {
					all = false
				}
			}
			if all {
				reach = ReachPrivate
			}
		}
		for _, port := range items(get(spec, "ports")) {
			proto := kubeProto(scalar(get(port, "protocol")))
			switch typ {
			case "LoadBalancer":
				f := newFinding(file, lineOf(get(port, "port")), "k8s-service-lb", proto, "0.0.0.0", "0.0.0.0", firstPort(scalar(get(port, "port"))))
				f.publication, f.Reach = true, reach
				f.Subject = fmt.Sprintf("Service %s of type LoadBalancer", meta)
				out = append(out, f)
			case "NodePort":
				at := lineOf(port)
				if np := get(port, "nodePort"); np != nil {
					at = lineOf(np)
				}
				f := newFinding(file, at, "k8s-service-nodeport", proto, "0.0.0.0", "0.0.0.0", firstPort(scalar(get(port, "nodePort"))))
				f.publication = true
				f.Subject = fmt.Sprintf("Service %s of type NodePort: on every node's interfaces", meta)
				out = append(out, f)
			}
			for _, ip := range items(get(spec, "externalIPs")) {
				f := newFinding(file, lineOf(ip), "k8s-external-ip", proto, scalar(ip), "0.0.0.0", firstPort(scalar(get(port, "port"))))
				f.publication = true
				f.Subject = fmt.Sprintf("Service %s external IP", meta)
				out = append(out, f)
			}
		}
		return out
	}
	walkPodSpecs(doc, 0, func(spec ast.Node) {
		hostNet := get(spec, "hostNetwork")
		hn := scalar(hostNet) == "true"
		any := false
		for _, list := range []string{"containers", "initContainers"} {
			for _, c := range items(get(spec, list)) {
				cname := scalar(get(c, "name"))
				for _, port := range items(get(c, "ports")) {
					proto := kubeProto(scalar(get(port, "protocol")))
					cp := firstPort(scalar(get(port, "containerPort")))
					if hp := get(port, "hostPort"); hp != nil {
						f := newFinding(file, lineOf(hp), "k8s-hostport", proto, scalar(get(port, "hostIP")), "0.0.0.0", firstPort(scalar(hp)))
						f.publication = true
						f.Subject = fmt.Sprintf("%s %s container %s hostPort (container port %d)", kind, meta, cname, cp)
						out = append(out, f)
					} else if hn {
						f := newFinding(file, lineOf(get(port, "containerPort")), "k8s-host-network", proto, "*", "*", cp)
						f.publication = true
						f.Subject = fmt.Sprintf("%s %s container %s on the node's network (hostNetwork)", kind, meta, cname)
						out = append(out, f)
						any = true
					}
				}
			}
		}
		if hn && !any {
			f := newFinding(file, lineOf(hostNet), "k8s-host-network", "tcp", "*", "*", 0)
			f.publication = true
			f.Subject = fmt.Sprintf("%s %s uses the node's network (hostNetwork): every port it binds is on the node", kind, meta)
			out = append(out, f)
		}
	})
	return out
}

func kubeProto(s string) policy.Protocol {
	if strings.EqualFold(s, "UDP") {
		return "udp"
	}
	return "tcp"
}

// walkPodSpecs calls fn for every mapping with a containers list (a pod spec at any depth:
// Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob templates).
func walkPodSpecs(n ast.Node, depth int, fn func(ast.Node)) {
	if depth > maxYAMLDepth || n == nil {
		return
	}
	if ps := pairs(n); ps != nil {
		if items(get(n, "containers")) != nil {
			fn(n)
			return
		}
		for _, kv := range ps {
			walkPodSpecs(unwrap(kv.Value), depth+1, fn)
		}
	}
	for _, it := range items(n) {
		walkPodSpecs(it, depth+1, fn)
	}
}
