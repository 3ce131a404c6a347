// Package kubernetes_test checks the Kubernetes manifests: they parse, the ConfigMap's policy
// is valid, and the container's arguments are flags bindguard serve accepts.
package kubernetes_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/bindguard/bindguard/internal/cli"
	"github.com/bindguard/bindguard/policy"
)

func TestDaemonSet(t *testing.T) {
	f, err := os.Open("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	dec := yaml.NewDecoder(f)
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		kinds[doc["kind"].(string)] = doc
	}
	cm, ds := kinds["ConfigMap"], kinds["DaemonSet"]
	if cm == nil || ds == nil || kinds["Namespace"] == nil {
		t.Fatalf("kinds %v", kinds)
	}
	src := cm["data"].(map[string]any)["bindguard.yaml"].(string)
	if _, err := policy.Parse("configmap/bindguard.yaml", []byte(src)); err != nil {
		t.Errorf("the ConfigMap's policy: %v", err)
	}
	pod := ds["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if pod["hostNetwork"] != true || pod["hostPID"] != true {
		t.Error("hostNetwork and hostPID must be set")
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	var out, errb bytes.Buffer
	err = cli.Run(context.Background(), append(args, "--help"), cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	if err != nil || !strings.Contains(out.String(), "bindguard serve") {
		t.Errorf("bindguard %v: %v %s", args, err, errb.String())
	}
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["privileged"] == true {
		t.Errorf("securityContext %v: want a read-only root and no privileged mode", sc)
	}
}
