// Package client calls the model registry API that inference.Runtime
// serves (/v1/models/...); it is what `netfeat models` uses.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/netfeat/netfeat/inference"
)

// Client talks to one netfeat server.
type Client struct {
	// BaseURL is the server's HTTP address, e.g. "http://127.0.0.1:9464".
	BaseURL string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
}

// Error renders the server's message and status.
func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func modelPath(name string) string { return "/v1/models/" + url.PathEscape(name) }

// List returns every model and rule.
func (c *Client) List(ctx context.Context) ([]inference.ModelInfo, error) {
	var ms []inference.ModelInfo
	return ms, c.do(ctx, http.MethodGet, "/v1/models", nil, &ms)
}

// Get returns one model.
func (c *Client) Get(ctx context.Context, model string) (inference.ModelInfo, error) {
	var mi inference.ModelInfo
	return mi, c.do(ctx, http.MethodGet, modelPath(model), nil, &mi)
}

// Upload stores artifact as a new version (named version, or the next
// v<N> when empty).
func (c *Client) Upload(ctx context.Context, model, version string, artifact []byte) (inference.VersionInfo, error) {
	p := modelPath(model) + "/versions"
	if version != "" {
		p += "?version=" + url.QueryEscape(version)
	}
	var vi inference.VersionInfo
	return vi, c.do(ctx, http.MethodPost, p, bytes.NewReader(artifact), &vi)
}

func (c *Client) change(ctx context.Context, model, op, version string) (inference.ModelInfo, error) {
	body, _ := json.Marshal(map[string]string{"version": version})
	var mi inference.ModelInfo
	return mi, c.do(ctx, http.MethodPost, modelPath(model)+"/"+op, bytes.NewReader(body), &mi)
}

// Shadow makes version score in shadow; "" stops the shadow.
func (c *Client) Shadow(ctx context.Context, model, version string) (inference.ModelInfo, error) {
	return c.change(ctx, model, "shadow", version)
}

// Promote makes version live; "" promotes the shadow version.
func (c *Client) Promote(ctx context.Context, model, version string) (inference.ModelInfo, error) {
	return c.change(ctx, model, "promote", version)
}

// Rollback makes the previous live version live again.
func (c *Client) Rollback(ctx context.Context, model string) (inference.ModelInfo, error) {
	var mi inference.ModelInfo
	return mi, c.do(ctx, http.MethodPost, modelPath(model)+"/rollback", nil, &mi)
}
