package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/netfeat/netfeat/schema"
)

// Batched windows, decisions and action transitions. A message may carry
// several items of one kind: their JSON documents, one per line, compressed
// with zstd (header Netfeat-Encoding: zstd). A JetStream message costs the
// edge a publish, a store and an acknowledgement, and the hub a delivery and
// an acknowledgement, whatever its size: an edge closing thousands of
// windows a minute spends far less per item in batches. A message of one
// item is stored as before: its document alone, its id the item's.
//
// Each item of a batch keeps its own id (WindowID, DecisionID, ActionID,
// computed again by the hub from the decoded item): the hub's sink
// de-duplicates by item, so an item that comes again in another batch
// (published again after an edge restart) is still taken once. The
// message's own id is derived from its items' ids, so a retry of the same
// batch is stored once by the edge stream.

// HeaderEncoding names the encoding of a batch message's body; absent, the
// body is one plain document or plain lines.
const HeaderEncoding = "Netfeat-Encoding"

// EncodingZstd is a zstd-compressed body of newline-separated documents.
const EncodingZstd = "zstd"

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// maxBatchBytes bounds a batch's decompressed body: the hub decodes what
// edges send as untrusted input.
const maxBatchBytes = 64 << 20

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// zstdCodec returns the package's shared zstd encoder and decoder (both
// safe for concurrent EncodeAll/DecodeAll).
func zstdCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		if zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1)); zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBatchBytes), zstd.WithDecoderMaxWindow(maxBatchBytes))
	})
	return zstdEnc, zstdDec, zstdErr
}

// compressBatch compresses a batch body: documents joined with newlines.
func compressBatch(body []byte) ([]byte, error) {
	enc, _, err := zstdCodec()
	if err != nil {
		return nil, fmt.Errorf("fleet: zstd: %w", err)
	}
	return enc.EncodeAll(body, nil), nil
}

// SplitBatch returns the documents of a message body: its lines,
// decompressed first when encoding is EncodingZstd. Empty lines are
// skipped.
func SplitBatch(data []byte, encoding string) ([][]byte, error) {
	switch encoding {
	case "":
	case EncodingZstd:
		_, dec, err := zstdCodec()
		if err != nil {
			return nil, fmt.Errorf("fleet: zstd: %w", err)
		}
		if data, err = dec.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("%w: batch: %v", ErrCorrupt, err)
		}
		if len(data) > maxBatchBytes {
			return nil, fmt.Errorf("%w: batch of %d bytes decompressed, more than %d", ErrCorrupt, len(data), maxBatchBytes)
		}
	default:
		return nil, fmt.Errorf("%w: %s %q", ErrCorrupt, HeaderEncoding, encoding)
	}
	var docs [][]byte
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			docs = append(docs, line)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrCorrupt)
	}
	return docs, nil
}

// batchID is the message id of a batch of kind: derived from its items'
// ids, in order.
func batchID(site string, k Kind, ids []string) string {
	var id identity
	id.str("batch")
	for _, s := range ids {
		id.str(s)
	}
	return msgID(site, k, id.sum())
}

// batchBuf holds the body of a batch while it is compressed.
var batchBuf = sync.Pool{New: func() any { return new([]byte) }}

// publishItems stores the documents of len(ids) items as one message: alone
// on single's subject when there is one, else as a batch. appendDoc
// appends item i's document.
func (e *Edge) publishItems(ctx context.Context, k Kind, single string, ids []string, appendDoc func(b []byte, i int) ([]byte, error)) error {
	if len(ids) == 1 {
		// Published as it is: a buffer of its own, which the message keeps.
		doc, err := appendDoc(make([]byte, 0, 1024), 0)
		if err != nil {
			return err
		}
		return e.publish(ctx, k, single, ids[0], doc, "")
	}
	bp := batchBuf.Get().(*[]byte)
	defer batchBuf.Put(bp)
	body, err := appendDocs((*bp)[:0], len(ids), appendDoc)
	*bp = body[:0]
	if err != nil {
		return err
	}
	data, err := compressBatch(body)
	if err != nil {
		return err
	}
	return e.publish(ctx, k, subjectPrefix(e.cfg.Site, k)+".batch", batchID(e.cfg.Site, k, ids), data, EncodingZstd)
}

// appendDocs appends the documents of n items to dst, one per line.
func appendDocs(dst []byte, n int, appendDoc func(b []byte, i int) ([]byte, error)) ([]byte, error) {
	for i := range n {
		if i > 0 {
			dst = append(dst, '\n')
		}
		var err error
		if dst, err = appendDoc(dst, i); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// PublishWindows stores closed windows for the hub in one message (see
// PublishWindow for one).
func (e *Edge) PublishWindows(ctx context.Context, rows []*schema.FeatureRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]string, len(rows))
	for i, row := range rows {
		ids[i] = WindowID(e.cfg.Site, row)
	}
	return e.publishItems(ctx, KindWindows, windowSubject(e.cfg.Site, rows[0]), ids, func(b []byte, i int) ([]byte, error) {
		return appendWindowDoc(b, rows[i])
	})
}

// PublishDecisions stores decisions for the hub in one message.
func (e *Edge) PublishDecisions(ctx context.Context, ds []*schema.Decision) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = DecisionID(e.cfg.Site, d)
	}
	return e.publishItems(ctx, KindDecisions, decisionSubject(e.cfg.Site, ds[0]), ids, func(b []byte, i int) ([]byte, error) {
		return appendDecisionDoc(b, ds[i])
	})
}

// PublishActions stores action transitions for the hub in one message.
func (e *Edge) PublishActions(ctx context.Context, as []*Action) error {
	if len(as) == 0 {
		return nil
	}
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = ActionID(e.cfg.Site, a)
	}
	return e.publishItems(ctx, KindActions, actionSubject(e.cfg.Site, as[0]), ids, func(b []byte, i int) ([]byte, error) {
		return appendActionDoc(b, as[i])
	})
}

func windowSubject(site string, row *schema.FeatureRow) string {
	return subjectPrefix(site, KindWindows) + "." + schema.SubjectToken(row.View) + "." + schema.SubjectToken(row.Device)
}

func decisionSubject(site string, d *schema.Decision) string {
	return subjectPrefix(site, KindDecisions) + "." + schema.SubjectToken(d.Model) + "." + schema.SubjectToken(d.Entity.Device)
}

func actionSubject(site string, a *Action) string {
	return subjectPrefix(site, KindActions) + "." + schema.SubjectToken(a.Model) + "." + schema.SubjectToken(a.Entity.Device)
}

// Item is one decoded window, decision, action transition or device state
// of a message, with its item id.
type Item struct {
	ID       string
	Window   *schema.FeatureRow
	Decision *schema.Decision
	Action   *Action
	Device   *DeviceState
}

// DecodeItems decodes a windows, decisions, actions or devices message of site: its
// items with their ids (a plain message of one document keeps msgID, the
// message's own id). Documents that do not decode are returned joined in
// err, beside the items that did.
func DecodeItems(site string, k Kind, data []byte, encoding, msgID string) ([]Item, error) {
	docs, err := SplitBatch(data, encoding)
	if err != nil {
		return nil, err
	}
	batch := encoding != "" || len(docs) > 1
	items := make([]Item, 0, len(docs))
	var errs []error
	for i, doc := range docs {
		var it Item
		var derr error
		switch k {
		case KindWindows:
			if it.Window, derr = DecodeWindow(doc); derr == nil {
				it.ID = WindowID(site, it.Window)
			}
		case KindDecisions:
			if it.Decision, derr = DecodeDecision(doc); derr == nil {
				it.ID = DecisionID(site, it.Decision)
			}
		case KindActions:
			if it.Action, derr = DecodeAction(doc); derr == nil {
				it.ID = ActionID(site, it.Action)
			}
		case KindDevices:
			if it.Device, derr = DecodeDeviceState(doc); derr == nil {
				it.ID = DeviceStateID(site, it.Device)
			}
		default:
			return nil, fmt.Errorf("fleet: DecodeItems of kind %s", k)
		}
		if derr != nil {
			errs = append(errs, fmt.Errorf("item %d: %w", i, derr))
			continue
		}
		if !batch {
			it.ID = msgID
		}
		items = append(items, it)
	}
	return items, errors.Join(errs...)
}
