package catalog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"modelcatalog/clients/go/catalog"
	modelcatalogv1 "modelcatalog/clients/go/gen/modelcatalog/v1"
)

const password = "correct horse battery"

// server returns the address and CA certificate of the server the tests run against
// (tests/polyglot/test_go.py starts one and sets both), and a context bounding the test.
func server(t *testing.T) (string, string, context.Context) {
	t.Helper()
	address := os.Getenv("MODELCATALOG_ADDRESS")
	if address == "" {
		t.Skip("MODELCATALOG_ADDRESS is not set: run through tests/polyglot/test_go.py, or set it and MODELCATALOG_CA_CERT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return address, os.Getenv("MODELCATALOG_CA_CERT"), ctx
}

// signedIn signs up a new user whose name starts with prefix and returns a client signed in
// as that user, and the username.
func signedIn(t *testing.T, prefix string) (*catalog.Client, string) {
	t.Helper()
	address, caCert, ctx := server(t)
	client, err := catalog.Dial(address, caCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	username := prefix + "-" + hex.EncodeToString(suffix)
	if _, err := client.Auth.SignUp(ctx, &modelcatalogv1.SignUpRequest{Username: username, Password: password}); err != nil {
		t.Fatalf("signing up %s: %v", username, err)
	}
	if _, err := client.SignIn(ctx, username, password); err != nil {
		t.Fatalf("signing in %s: %v", username, err)
	}
	return client, username
}

func createFolder(ctx context.Context, t *testing.T, client *catalog.Client, name string) *modelcatalogv1.Folder {
	t.Helper()
	response, err := client.Folders.CreateFolder(ctx, &modelcatalogv1.CreateFolderRequest{Name: name})
	if err != nil {
		t.Fatalf("creating folder %s: %v", name, err)
	}
	return response.Folder
}

func createModel(ctx context.Context, t *testing.T, client *catalog.Client, folderID, name string) *modelcatalogv1.Model {
	t.Helper()
	response, err := client.Models.CreateModel(ctx, &modelcatalogv1.CreateModelRequest{FolderId: folderID, Name: name})
	if err != nil {
		t.Fatalf("creating model %s: %v", name, err)
	}
	return response.Model
}

// modelNames lists every model the client may see, a page of two at a time.
func modelNames(ctx context.Context, t *testing.T, client *catalog.Client) []string {
	t.Helper()
	var names []string
	request := &modelcatalogv1.ListModelsRequest{PageSize: 2}
	for {
		response, err := client.Models.ListModels(ctx, request)
		if err != nil {
			t.Fatalf("listing models: %v", err)
		}
		for _, model := range response.Models {
			names = append(names, model.Name)
		}
		if response.NextPageToken == "" {
			return names
		}
		request.PageToken = response.NextPageToken
	}
}

func grant(ctx context.Context, t *testing.T, owner *catalog.Client, folderID, username string, role modelcatalogv1.FolderRole) {
	t.Helper()
	_, err := owner.Folders.GrantFolderAccess(ctx, &modelcatalogv1.GrantFolderAccessRequest{
		FolderId: folderID, Username: username, Role: role,
	})
	if err != nil {
		t.Fatalf("granting %s to %s: %v", role, username, err)
	}
}

// TestCreateModelWithoutFolderPermission: user 2 cannot create a model in user 1's folder,
// and the refusal says why (PERMISSION_DENIED, reason FOLDER_ACCESS_DENIED).
func TestCreateModelWithoutFolderPermission(t *testing.T) {
	user1, _ := signedIn(t, "user1")
	user2, _ := signedIn(t, "user2")
	_, _, ctx := server(t)
	folder := createFolder(ctx, t, user1, "user1-folder")
	_, err := user2.Models.CreateModel(ctx, &modelcatalogv1.CreateModelRequest{FolderId: folder.Id, Name: "intruder"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("got %v, want PERMISSION_DENIED", err)
	}
	if reason := catalog.Reason(err); reason != modelcatalogv1.ErrorReason_ERROR_REASON_FOLDER_ACCESS_DENIED {
		t.Fatalf("got reason %v, want FOLDER_ACCESS_DENIED", reason)
	}
	if names := modelNames(ctx, t, user1); len(names) != 0 {
		t.Fatalf("user 1 sees %v, want no model", names)
	}
}

// TestCreateModelAfterGrantFolderPermission: once user 1 makes user 2 an editor of the
// folder, user 2 can create a model there, and user 1 sees it.
func TestCreateModelAfterGrantFolderPermission(t *testing.T) {
	user1, _ := signedIn(t, "user1")
	user2, username2 := signedIn(t, "user2")
	_, _, ctx := server(t)
	folder := createFolder(ctx, t, user1, "user1-folder")
	grant(ctx, t, user1, folder.Id, username2, modelcatalogv1.FolderRole_FOLDER_ROLE_EDITOR)
	model := createModel(ctx, t, user2, folder.Id, "welcome")
	if model.CreatorUsername != username2 {
		t.Fatalf("creator is %q, want %q", model.CreatorUsername, username2)
	}
	if names := modelNames(ctx, t, user1); strings.Join(names, ",") != "welcome" {
		t.Fatalf("user 1 sees %v, want [welcome]", names)
	}
}

// TestListOnlyAuthorizedModels: each user lists exactly the models they may see; user 1
// sees 2, then 3 once user 2 shares a folder.
func TestListOnlyAuthorizedModels(t *testing.T) {
	user1, username1 := signedIn(t, "user1")
	user2, _ := signedIn(t, "user2")
	_, _, ctx := server(t)
	folder1 := createFolder(ctx, t, user1, "one")
	createModel(ctx, t, user1, folder1.Id, "m1")
	createModel(ctx, t, user1, folder1.Id, "m2")
	folder2 := createFolder(ctx, t, user2, "two")
	createModel(ctx, t, user2, folder2.Id, "m3")
	if names := modelNames(ctx, t, user1); strings.Join(names, ",") != "m1,m2" {
		t.Fatalf("user 1 sees %v, want [m1 m2]", names)
	}
	if names := modelNames(ctx, t, user2); strings.Join(names, ",") != "m3" {
		t.Fatalf("user 2 sees %v, want [m3]", names)
	}
	grant(ctx, t, user2, folder2.Id, username1, modelcatalogv1.FolderRole_FOLDER_ROLE_VIEWER)
	if names := modelNames(ctx, t, user1); strings.Join(names, ",") != "m1,m2,m3" {
		t.Fatalf("user 1 sees %v after the share, want [m1 m2 m3]", names)
	}
}

// TestUploadThenDownloadIsIdentical: a file uploaded in chunks comes back byte for byte,
// and both sides agree on its SHA-256. At 24 MiB it is past the size (16 MiB) at which
// grpc-go's default windows ping the server into closing the connection.
func TestUploadThenDownloadIsIdentical(t *testing.T) {
	user, _ := signedIn(t, "uploader")
	_, _, ctx := server(t)
	model := createModel(ctx, t, user, createFolder(ctx, t, user, "weights").Id, "resnet")
	content := make([]byte, 24*catalog.ChunkSize+12345)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	source := filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(source, content, 0o600); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(content)
	uploaded, err := user.Upload(ctx, model.Id, source)
	if err != nil {
		t.Fatalf("uploading: %v", err)
	}
	if uploaded.Version != 1 || uploaded.SizeBytes != int64(len(content)) || uploaded.Sha256 != hex.EncodeToString(digest[:]) {
		t.Fatalf("uploaded version %d of %d bytes with SHA-256 %s, want version 1 of %d bytes with %x",
			uploaded.Version, uploaded.SizeBytes, uploaded.Sha256, len(content), digest)
	}
	copyPath := filepath.Join(t.TempDir(), "weights-copy.bin")
	downloaded, err := user.Download(ctx, model.Id, uploaded.Version, copyPath)
	if err != nil {
		t.Fatalf("downloading: %v", err)
	}
	copied, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(copied, content) {
		t.Fatal("the downloaded file differs from the uploaded one")
	}
	if copiedDigest := sha256.Sum256(copied); downloaded.Sha256 != hex.EncodeToString(copiedDigest[:]) {
		t.Fatalf("the server says SHA-256 %s, the copy has %x", downloaded.Sha256, copiedDigest)
	}
}

// TestErrorInfoReasonIsDecoded: a failed call's status details carry a google.rpc.ErrorInfo
// of domain modelcatalog.v1 whose reason is a declared ErrorReason without its prefix.
func TestErrorInfoReasonIsDecoded(t *testing.T) {
	user, username := signedIn(t, "reader")
	_, _, ctx := server(t)
	_, err := user.SignIn(ctx, username, "not the password")
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("got %v, want UNAUTHENTICATED", err)
	}
	info := catalog.ErrorInfo(err)
	if info == nil {
		t.Fatalf("no ErrorInfo in the status details of %v", err)
	}
	if info.Domain != catalog.ErrorDomain || info.Reason != "INVALID_CREDENTIALS" {
		t.Fatalf("ErrorInfo has domain %q and reason %q, want %q and INVALID_CREDENTIALS", info.Domain, info.Reason, catalog.ErrorDomain)
	}
	if reason := catalog.Reason(err); reason != modelcatalogv1.ErrorReason_ERROR_REASON_INVALID_CREDENTIALS {
		t.Fatalf("got reason %v, want INVALID_CREDENTIALS", reason)
	}
}

// TestReadOnlyAccessToken: a client given a read-only access token (UseAccessToken) lists the
// owner's models and is refused a change with PERMISSION_DENIED, reason TOKEN_READ_ONLY.
func TestReadOnlyAccessToken(t *testing.T) {
	owner, _ := signedIn(t, "owner")
	address, caCert, ctx := server(t)
	createModel(ctx, t, owner, createFolder(ctx, t, owner, "weights").Id, "resnet")
	made, err := owner.Auth.CreateAccessToken(ctx, &modelcatalogv1.CreateAccessTokenRequest{
		Name: "ci", Scope: modelcatalogv1.AccessTokenScope_ACCESS_TOKEN_SCOPE_READ, TtlSeconds: 3600,
	})
	if err != nil {
		t.Fatalf("creating an access token: %v", err)
	}
	job, err := catalog.Dial(address, caCert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { job.Close() })
	job.UseAccessToken(made.Secret)
	if names := modelNames(ctx, t, job); len(names) != 1 || names[0] != "resnet" {
		t.Fatalf("the token sees %v, want [resnet]", names)
	}
	_, err = job.Folders.CreateFolder(ctx, &modelcatalogv1.CreateFolderRequest{Name: "another"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("got %v, want PERMISSION_DENIED", err)
	}
	if reason := catalog.Reason(err); reason != modelcatalogv1.ErrorReason_ERROR_REASON_TOKEN_READ_ONLY {
		t.Fatalf("got reason %v, want TOKEN_READ_ONLY", reason)
	}
}
