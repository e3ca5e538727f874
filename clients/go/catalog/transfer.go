package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	modelcatalogv1 "modelcatalog/clients/go/gen/modelcatalog/v1"
)

// ChunkSize is how many file bytes one upload message carries: the server's limit on a
// message is 4 MiB + 64 KiB, and chunks of about 1 MiB stream fastest.
const ChunkSize = 1 << 20

// Upload streams the file at path as the next version of a model. It hashes the file first so
// that the header declares its size and SHA-256: the server checks both and keeps nothing when
// they differ from what arrived.
func (c *Client) Upload(ctx context.Context, modelID, path string) (*modelcatalogv1.ModelVersion, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	digest := sha256.New()
	size, err := io.Copy(digest, file)
	if err != nil {
		return nil, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Models.UploadModelVersion(ctx)
	if err != nil {
		return nil, err
	}
	header := &modelcatalogv1.UploadModelVersionHeader{
		ModelId:     modelID,
		FileName:    filepath.Base(path),
		ContentType: "application/octet-stream",
		SizeBytes:   &size,
		Sha256:      hex.EncodeToString(digest.Sum(nil)),
	}
	err = stream.Send(&modelcatalogv1.UploadModelVersionRequest{
		Content: &modelcatalogv1.UploadModelVersionRequest_Header{Header: header},
	})
	buffer := make([]byte, ChunkSize)
	for err == nil {
		var read int
		read, err = io.ReadFull(file, buffer)
		if read > 0 {
			// Send copies the message out before it returns, so the buffer can be reused.
			chunk := &modelcatalogv1.UploadModelVersionRequest_Chunk{Chunk: buffer[:read]}
			if sendErr := stream.Send(&modelcatalogv1.UploadModelVersionRequest{Content: chunk}); sendErr != nil {
				err = sendErr
			}
		}
	}
	// io.EOF: the whole file was read, or the server ended the call early and its status
	// (from CloseAndRecv) says why.
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("uploading %s: %w", path, err)
	}
	response, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return response.Version, nil
}

// Download writes a version's bytes to dest. They go to dest + ".part" first and are renamed
// to dest only when their size and SHA-256 match the metadata the server sent, so a damaged
// download never lands.
func (c *Client) Download(ctx context.Context, modelID string, version int64, dest string) (*modelcatalogv1.ModelVersion, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Models.DownloadModelVersion(ctx, &modelcatalogv1.DownloadModelVersionRequest{
		ModelId: modelID,
		Version: version,
	})
	if err != nil {
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	metadata := first.GetVersion()
	if metadata == nil {
		return nil, errors.New("the download did not start with the version's metadata")
	}
	partial := dest + ".part"
	file, err := os.Create(partial)
	if err != nil {
		return nil, err
	}
	digest := sha256.New()
	written, err := receiveChunks(stream, io.MultiWriter(file, digest))
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = verify(metadata, written, hex.EncodeToString(digest.Sum(nil)))
	}
	if err != nil {
		os.Remove(partial)
		return nil, err
	}
	return metadata, os.Rename(partial, dest)
}

// receiveChunks writes every chunk of the stream to out until the server ends it.
func receiveChunks(stream modelcatalogv1.ModelService_DownloadModelVersionClient, out io.Writer) (int64, error) {
	var written int64
	for {
		message, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return written, nil
		}
		if err != nil {
			return written, err
		}
		count, err := out.Write(message.GetChunk())
		written += int64(count)
		if err != nil {
			return written, err
		}
	}
}

// verify says how the received bytes differ from the version's metadata, if they do.
func verify(metadata *modelcatalogv1.ModelVersion, size int64, sha256Hex string) error {
	if size != metadata.SizeBytes {
		return fmt.Errorf("received %d bytes, the version has %d", size, metadata.SizeBytes)
	}
	if sha256Hex != metadata.Sha256 {
		return fmt.Errorf("received bytes with SHA-256 %s, the version has %s", sha256Hex, metadata.Sha256)
	}
	return nil
}
