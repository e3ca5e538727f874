package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunUploadsAndDownloadsTheFile: the example's whole flow leaves FILE.copy identical to
// FILE, and a second run for the same user reuses the account.
func TestRunUploadsAndDownloadsTheFile(t *testing.T) {
	address := os.Getenv("MODELCATALOG_ADDRESS")
	if address == "" {
		t.Skip("MODELCATALOG_ADDRESS is not set: run through tests/polyglot/test_go.py, or set it and MODELCATALOG_CA_CERT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := make([]byte, 4)
	content := make([]byte, 1500000)
	for _, random := range [][]byte{suffix, content} {
		if _, err := rand.Read(random); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := options{
		address:  address,
		caCert:   os.Getenv("MODELCATALOG_CA_CERT"),
		username: "example-" + hex.EncodeToString(suffix),
		password: "correct horse battery",
		file:     file,
	}
	for _, folder := range []string{"first-run", "second-run"} {
		opts.folder, opts.model = folder, folder
		var out strings.Builder
		if err := run(ctx, opts, &out); err != nil {
			t.Fatalf("%s: %v\n%s", folder, err, out.String())
		}
	}
	copied, err := os.ReadFile(file + ".copy")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, content) {
		t.Fatal("FILE.copy differs from FILE")
	}
}
