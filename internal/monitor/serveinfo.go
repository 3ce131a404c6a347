package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ServeInfoFile is where a running serve records, in its data directory, where it listens.
const ServeInfoFile = "serve.json"

// ServeInfo is what a running serve records for `bindguard events` (and the next serve): where
// to ask it, how to trust its certificate and whether it wants basic auth. It holds no secret.
type ServeInfo struct {
	Schema string `json:"schema"` // bindguard.serve.v1
	PID    int    `json:"pid"`
	// URL is the base URL to ask it at (a wildcard listener is asked on loopback).
	URL    string `json:"url"`
	Scheme string `json:"scheme"` // http or https
	Listen string `json:"listen"`
	// CertFile is the absolute path of the certificate it serves (cert_file of the web
	// configuration); CertPEM the certificate itself when the configuration holds it inline.
	CertFile  string    `json:"cert_file,omitempty"`
	CertPEM   string    `json:"cert_pem,omitempty"`
	BasicAuth bool      `json:"basic_auth"`
	Started   time.Time `json:"started"`
}

// WriteServeInfo writes info into dir atomically (a temporary file, synced, renamed), 0600.
func WriteServeInfo(dir string, info ServeInfo) error {
	info.Schema = "bindguard.serve.v1"
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".serve-*.json")
	if err != nil {
		return fmt.Errorf("serve info: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("serve info: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("serve info: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("serve info: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("serve info: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ServeInfoFile)); err != nil {
		return fmt.Errorf("serve info: %w", err)
	}
	return nil
}

// ReadServeInfo reads what a running serve recorded in dir; os.ErrNotExist when nothing is.
func ReadServeInfo(dir string) (ServeInfo, error) {
	var info ServeInfo
	b, err := os.ReadFile(filepath.Join(dir, ServeInfoFile)) // #nosec G304 -- the operator's data directory
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Schema != "bindguard.serve.v1" || info.URL == "" {
		return info, fmt.Errorf("%s: not a bindguard.serve.v1 record (%v)", filepath.Join(dir, ServeInfoFile), err)
	}
	return info, nil
}

// RemoveServeInfo removes dir's record if it is pid's (a later serve's is left alone).
func RemoveServeInfo(dir string, pid int) error {
	info, err := ReadServeInfo(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && info.PID != pid) {
		return nil
	}
	return os.Remove(filepath.Join(dir, ServeInfoFile))
}
