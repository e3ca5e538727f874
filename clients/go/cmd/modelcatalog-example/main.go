// Command modelcatalog-example runs the README's flow against a modelcatalog server: sign up
// (an existing account is reused), sign in, create a folder and a model in it, upload a file
// as its first version and download that version back, verified by size and SHA-256.
//
//	export MODELCATALOG_CA_CERT=$PWD/modelcatalog-data/tls/server.crt
//	export MODELCATALOG_PASSWORD='correct horse battery'
//	go run ./cmd/modelcatalog-example -user alice -file weights.bin
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"modelcatalog/clients/go/catalog"
	modelcatalogv1 "modelcatalog/clients/go/gen/modelcatalog/v1"
)

// options are what one run needs; flags and MODELCATALOG_* variables fill them.
type options struct {
	address  string
	caCert   string
	username string
	password string
	folder   string
	model    string
	file     string
}

func main() {
	opts := options{password: os.Getenv("MODELCATALOG_PASSWORD")}
	flag.StringVar(&opts.address, "address", envOr("MODELCATALOG_ADDRESS", "127.0.0.1:50051"), "server address (MODELCATALOG_ADDRESS)")
	flag.StringVar(&opts.caCert, "ca-cert", os.Getenv("MODELCATALOG_CA_CERT"), "PEM certificate to trust (MODELCATALOG_CA_CERT)")
	flag.StringVar(&opts.username, "user", "", "username to sign up or sign in as; the password comes from MODELCATALOG_PASSWORD")
	flag.StringVar(&opts.folder, "folder", "go-example", "name of the folder to create")
	flag.StringVar(&opts.model, "model", "example", "name of the model to create")
	flag.StringVar(&opts.file, "file", "", "file to upload; it comes back as FILE.copy")
	flag.Parse()
	if opts.username == "" || opts.password == "" || opts.file == "" {
		fmt.Fprintln(os.Stderr, "-user, -file and MODELCATALOG_PASSWORD are required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v (reason %s)\n", err, catalog.Reason(err))
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// run is the whole flow; it reports each step on out.
func run(ctx context.Context, opts options, out io.Writer) error {
	client, err := catalog.Dial(opts.address, opts.caCert)
	if err != nil {
		return err
	}
	defer client.Close()
	_, err = client.Auth.SignUp(ctx, &modelcatalogv1.SignUpRequest{Username: opts.username, Password: opts.password})
	if err != nil && catalog.Reason(err) != modelcatalogv1.ErrorReason_ERROR_REASON_USERNAME_TAKEN {
		return fmt.Errorf("signing up: %w", err)
	}
	if _, err := client.SignIn(ctx, opts.username, opts.password); err != nil {
		return fmt.Errorf("signing in: %w", err)
	}
	folder, err := client.Folders.CreateFolder(ctx, &modelcatalogv1.CreateFolderRequest{Name: opts.folder})
	if err != nil {
		return fmt.Errorf("creating folder %s: %w", opts.folder, err)
	}
	model, err := client.Models.CreateModel(ctx, &modelcatalogv1.CreateModelRequest{
		FolderId: folder.Folder.Id,
		Name:     opts.model,
	})
	if err != nil {
		return fmt.Errorf("creating model %s: %w", opts.model, err)
	}
	fmt.Fprintf(out, "model %s in folder %s\n", model.Model.Id, folder.Folder.Id)
	version, err := client.Upload(ctx, model.Model.Id, opts.file)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "uploaded version %d: %d bytes, SHA-256 %s\n", version.Version, version.SizeBytes, version.Sha256)
	copyPath := opts.file + ".copy"
	if _, err := client.Download(ctx, model.Model.Id, version.Version, copyPath); err != nil {
		return err
	}
	fmt.Fprintf(out, "downloaded to %s, SHA-256 verified\n", copyPath)
	return nil
}
