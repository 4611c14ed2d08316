// Package apiclient is the HTTP client of a running netfeat's API that the
// CLI's client packages share (query.Client for /v1/query, the model
// registry's inference/client for /v1/models): one base URL, an optional
// bearer token, and the server's {"error": "..."} answers as *Error.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client sends requests to one netfeat server. Set BaseURL; the zero value
// of the other fields is usable. It is safe for concurrent use.
type Client struct {
	// BaseURL is the server's HTTP address, such as
	// http://127.0.0.1:9464; a trailing slash is ignored.
	BaseURL string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

// maxErrorBytes bounds the error answer read into Error.Message.
const maxErrorBytes = 64 << 10

// Error is an answer whose status is not 2xx.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// StatusText is the response's status, such as "400 Bad Request".
	StatusText string
	// Message is the server's "error" member, or the answer's text (at
	// most 64 KiB, spaces trimmed) when it has none.
	Message string
}

// Error renders the server's message and status.
func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status) }

// NewRequest returns a request for path (such as /v1/query) under BaseURL,
// carrying the bearer token when one is set.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// Do sends req and returns the response when its status is 2xx; the caller
// closes its body. Any other status is returned as an *Error, with the
// body read and closed. A failure to send is http.Client's error as it is.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var e struct {
		Error string `json:"error"`
	}
	msg := string(bytes.TrimSpace(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return nil, &Error{Status: resp.StatusCode, StatusText: resp.Status, Message: msg}
}
