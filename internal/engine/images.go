package engine

import (
	"context"
	"encoding/json"
	"io"
	"net/url"

	"github.com/moby/moby/api/types/image"
)

// ImageInspect returns an image's ID, size and settings.
func (c *Client) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	var res image.InspectResponse
	err := c.call(ctx, request{method: "GET", path: "/images/" + ref + "/json"}, &res)
	return res, err
}

// ImageImport makes an image from a rootfs tarball (POST /images/create
// with fromSrc=-), applying Dockerfile instructions (changes) to its config.
func (c *Client) ImageImport(ctx context.Context, rootfs io.Reader, repo, tag string, changes []string, message string) error {
	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}, "message": {message}}
	for _, ch := range changes {
		q.Add("changes", ch)
	}
	return c.stream(ctx, request{method: "POST", path: "/images/create", query: q, body: rootfs,
		header: map[string][]string{"Content-Type": {"application/x-tar"}}})
}

// ImageList lists images matching f.
func (c *Client) ImageList(ctx context.Context, f Filters) ([]image.Summary, error) {
	q := f.values()
	var res []image.Summary
	err := c.call(ctx, request{method: "GET", path: "/images/json", query: q}, &res)
	return res, err
}

// ImageRemove untags (and, when no tag is left, deletes) an image.
func (c *Client) ImageRemove(ctx context.Context, ref string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "1")
	}
	return c.call(ctx, request{method: "DELETE", path: "/images/" + ref, query: q}, nil)
}

// ImageBuild builds a Dockerfile with the classic builder (POST /build,
// version=1) from a tar of the build context, tagged tag.
func (c *Client) ImageBuild(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string) error {
	q := url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}, "version": {"1"}, "dockerfile": {"Dockerfile"}}
	if len(labels) > 0 {
		b, err := json.Marshal(labels)
		if err != nil {
			return err
		}
		q.Set("labels", string(b))
	}
	return c.stream(ctx, request{method: "POST", path: "/build", query: q, body: buildContext,
		header: map[string][]string{"Content-Type": {"application/x-tar"}}})
}
