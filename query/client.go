//go:build duckdb_arrow

package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/netfeat/netfeat/internal/apiclient"
)

// Client queries a running netfeat over HTTP (POST /v1/query). Set
// BaseURL, and Token when the service requires one (see apiclient.Client).
type Client struct {
	apiclient.Client
}

// Do posts req and returns the response, whose body the caller closes. A
// status other than 2xx is an error carrying the server's message.
func (c *Client) Do(ctx context.Context, req Request) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode query: %w", err)
	}
	hr, err := c.NewRequest(ctx, http.MethodPost, "/v1/query", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("query request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.Client.Do(hr)
	if apiErr, ok := errors.AsType[*apiclient.Error](err); ok {
		return nil, fmt.Errorf("query %s: %s: %s", c.BaseURL, apiErr.StatusText, apiErr.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", c.BaseURL, err)
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
