// Package client calls the model registry API that inference.Runtime
// serves (/v1/models/...); it is what `netfeat models` uses.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/apiclient"
)

// Client talks to one netfeat server. Set BaseURL, and Token when the
// server requires one (see apiclient.Client).
type Client struct {
	apiclient.Client
}

// Error is an error answer of the API: its status and the server's
// message, rendered as "<message> (HTTP <status>)".
type Error = apiclient.Error

// maxAnswerBytes bounds an answer read.
const maxAnswerBytes = 64 << 20

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	resp, err := c.Client.Do(req)
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
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

// PromoteGated makes version live behind the promotion gate: the server
// refuses it when its stored backtest is worse than the live version's on
// gate.Metric, unless gate.Force.
func (c *Client) PromoteGated(ctx context.Context, model, version string, gate inference.Gate) (inference.ModelInfo, error) {
	body, _ := json.Marshal(struct {
		Version string `json:"version"`
		inference.Gate
	}{version, gate})
	var mi inference.ModelInfo
	return mi, c.do(ctx, http.MethodPost, modelPath(model)+"/promote", bytes.NewReader(body), &mi)
}

// Artifact returns a stored version's model file.
func (c *Client) Artifact(ctx context.Context, model, version string) ([]byte, error) {
	p := modelPath(model) + "/versions/" + url.PathEscape(version) + "/artifact"
	req, err := c.NewRequest(ctx, http.MethodGet, p, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	resp, err := c.Client.Do(req)
	if _, ok := errors.AsType[*Error](err); ok {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	return b, nil
}

// RecordBacktest stores a backtest result with a stored version.
func (c *Client) RecordBacktest(ctx context.Context, model, version string, bt inference.Backtest) (inference.VersionInfo, error) {
	body, err := json.Marshal(bt)
	if err != nil {
		return inference.VersionInfo{}, err
	}
	var vi inference.VersionInfo
	return vi, c.do(ctx, http.MethodPost, modelPath(model)+"/versions/"+url.PathEscape(version)+"/backtest", bytes.NewReader(body), &vi)
}

// Rollback makes the previous live version live again.
func (c *Client) Rollback(ctx context.Context, model string) (inference.ModelInfo, error) {
	var mi inference.ModelInfo
	return mi, c.do(ctx, http.MethodPost, modelPath(model)+"/rollback", nil, &mi)
}
