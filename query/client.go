package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// Client queries a running netfeat over HTTP (POST /v1/query). The zero
// value is not usable: set URL.
type Client struct {
	// URL is the service's base URL, such as http://127.0.0.1:9464.
	URL string
	// Token is the bearer token, if the service requires one.
	Token string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

// Do posts req and returns the response, whose body the caller closes. A
// status other than 200 is an error carrying the server's message.
func (c *Client) Do(ctx context.Context, req Request) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode query: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.URL, "/")+"/v1/query", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("query request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(msg, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("query %s: %s: %s", c.URL, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("query %s: %s: %s", c.URL, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// Arrow runs req with format arrow and returns a reader over the result
// stream. After the reader is exhausted, Trailer reports the row count,
// truncation and any late error (see HeaderRows). Close the response body
// when done.
func (c *Client) Arrow(ctx context.Context, req Request) (*ipc.Reader, *http.Response, error) {
	req.Format = FormatArrow
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("read arrow stream: %w", err)
	}
	return rd, resp, nil
}

// TrailerError returns the error a finished response reported in its
// trailer, or nil.
func TrailerError(resp *http.Response) error {
	if msg := resp.Trailer.Get(HeaderError); msg != "" {
		return fmt.Errorf("query failed part-way: %s", msg)
	}
	return nil
}
