// Package catalog is a thin layer over the generated modelcatalog.v1 clients: a TLS
// connection that trusts the server's CA, the bearer token after sign-in, a streamed upload
// that declares its SHA-256, a download verified against the digest the server sends, and the
// ErrorInfo reason of a failed call. The generated clients (Auth, Folders, Models) stay usable
// on their own for everything else.
package catalog

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	modelcatalogv1 "modelcatalog/clients/go/gen/modelcatalog/v1"
)

// flowControlWindow is the HTTP/2 flow-control window, per call and per connection, that the
// client grants the server: the same 4 MiB as the server grants its clients.
const flowControlWindow = 4 << 20

// Client is one connection to a modelcatalog server and the generated clients on top of it.
type Client struct {
	conn    *grpc.ClientConn
	token   *bearerToken
	Auth    modelcatalogv1.AuthServiceClient
	Folders modelcatalogv1.FolderServiceClient
	Models  modelcatalogv1.ModelServiceClient
}

// Dial connects over TLS to address ("127.0.0.1:50051"), trusting the PEM certificate in
// caCertFile (the server's self-signed DATA_DIR/tls/server.crt, or the CA that issued its
// certificate). An empty caCertFile trusts the system's CAs.
func Dial(address, caCertFile string) (*Client, error) {
	transport := credentials.NewTLS(nil)
	if caCertFile != "" {
		var err error
		if transport, err = credentials.NewClientTLSFromFile(caCertFile, ""); err != nil {
			return nil, fmt.Errorf("reading CA certificate: %w", err)
		}
	}
	token := &bearerToken{}
	conn, err := grpc.Dial(
		address,
		grpc.WithTransportCredentials(transport),
		grpc.WithPerRPCCredentials(token),
		// Fixed 4 MiB windows, as the server's own: grpc-go's default dynamic windows send a
		// PING with every burst of a download to size themselves, and the server takes that
		// many PINGs for a flood and closes the connection (downloads of 16 MiB or more).
		grpc.WithInitialWindowSize(flowControlWindow),
		grpc.WithInitialConnWindowSize(flowControlWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", address, err)
	}
	return &Client{
		conn:    conn,
		token:   token,
		Auth:    modelcatalogv1.NewAuthServiceClient(conn),
		Folders: modelcatalogv1.NewFolderServiceClient(conn),
		Models:  modelcatalogv1.NewModelServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.conn.Close()
}

// SignIn signs in and sends the access token it gets with every later call of this client.
func (c *Client) SignIn(ctx context.Context, username, password string) (*modelcatalogv1.User, error) {
	response, err := c.Auth.SignIn(ctx, &modelcatalogv1.SignInRequest{Username: username, Password: password})
	if err != nil {
		return nil, err
	}
	c.token.set(response.AccessToken)
	return response.User, nil
}

// UseAccessToken sends token with every later call of this client instead of a sign-in token:
// an access token a user made for a machine with AuthService.CreateAccessToken (what a CI job
// is given), or a token signed in elsewhere.
func (c *Client) UseAccessToken(token string) {
	c.token.set(token)
}

// bearerToken adds "authorization: Bearer <token>" to every call once a token is known.
type bearerToken struct {
	mu    sync.Mutex
	value string
}

func (t *bearerToken) set(value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.value = value
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t *bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.value == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + t.value}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: tokens never go out in
// plaintext.
func (t *bearerToken) RequireTransportSecurity() bool {
	return true
}
