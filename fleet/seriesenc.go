package fleet

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// SeriesSample is one raw sample of a series its producer interned: Series
// is the id SeriesLabels gives the labels of (on an edge, the feature
// store's series id).
type SeriesSample struct {
	TS       int64
	IngestTS int64
	Value    float64
	Series   int32
}

// SeriesLabels returns the labels of series id: its device, component,
// metric and source. A series' labels must never change.
type SeriesLabels func(id int32) (device, component, metric, source string, err error)

// SeriesEncoder encodes SeriesSamples in the samples wire format: a
// message, and so its id, is byte for byte the one EncodeSamples makes of
// the same samples with their labels. It asks for a series' labels once
// and keeps them as numbers of the labels it has seen, so that a message
// costs no string comparison or hashing: on an edge nearly every series
// appears in every message, and resolving four strings a row was most of
// the cost of forwarding a sample. Not safe for concurrent use.
type SeriesEncoder struct {
	labels SeriesLabels
	series []seriesInfo // by series id
	strs   []string     // by label number
	nums   map[string]uint32

	// Per message: a label or series is in the message when its stamp is
	// the message's epoch.
	epoch    uint32
	strStamp []uint32 // by label number
	strIndex []uint32 // by label number: its index in the message
	serStamp []uint32 // by series id
	serPrev  []uint64 // by series id: its last value bits in the message

	// Edge.PublishSeriesSamples' scratch: the selected samples and the
	// message, kept for the next call.
	selBuf []SeriesSample
	encBuf []byte
}

// seriesInfo is what a SeriesEncoder remembers of a series.
type seriesInfo struct {
	known bool
	nums  [4]uint32 // device, component, metric, source
	// hash is the FNV-1a of the labels as the sampled mode hashes them,
	// before the time.
	hash uint64
}

// NewSeriesEncoder returns an encoder that learns series labels from
// labels.
func NewSeriesEncoder(labels SeriesLabels) *SeriesEncoder {
	return &SeriesEncoder{labels: labels, nums: map[string]uint32{}}
}

// info returns what the encoder knows of series id, asking for its labels
// the first time.
func (e *SeriesEncoder) info(id int32) (*seriesInfo, error) {
	if id < 0 {
		return nil, fmt.Errorf("fleet: series id %d", id)
	}
	if int(id) < len(e.series) && e.series[id].known {
		return &e.series[id], nil
	}
	dev, comp, metric, src, err := e.labels(id)
	if err != nil {
		return nil, fmt.Errorf("fleet: labels of series %d: %w", id, err)
	}
	if int(id) >= len(e.series) {
		n := max(int(id)+1, 2*len(e.series), 1024)
		e.series = append(e.series, make([]seriesInfo, n-len(e.series))...)
		e.serStamp = append(e.serStamp, make([]uint32, n-len(e.serStamp))...)
		e.serPrev = append(e.serPrev, make([]uint64, n-len(e.serPrev))...)
	}
	in := &e.series[id]
	for c, s := range [4]string{dev, comp, metric, src} {
		in.nums[c] = e.number(s)
	}
	h := fnvString(fnvOffset, dev)
	h = fnvString(fnvByte(h, 0), comp)
	in.hash = fnvString(fnvByte(h, 0), metric)
	in.known = true
	return in, nil
}

// number returns the number of label s, numbering it if it is new.
func (e *SeriesEncoder) number(s string) uint32 {
	if n, ok := e.nums[s]; ok {
		return n
	}
	n := uint32(len(e.strs))
	e.strs = append(e.strs, s)
	e.nums[s] = n
	e.strStamp = append(e.strStamp, 0)
	e.strIndex = append(e.strIndex, 0)
	return n
}

// Encode appends batch to dst as one message, like EncodeSamples, and
// returns it with its message id.
func (e *SeriesEncoder) Encode(dst []byte, site string, batch []SeriesSample, comp Compression) ([]byte, string, error) {
	n := len(batch)
	// Make sure of every series first: a failure leaves no stamp of a
	// half-encoded message.
	for i := range batch {
		if _, err := e.info(batch[i].Series); err != nil {
			return dst, "", err
		}
	}
	if e.epoch++; e.epoch == 0 {
		clear(e.strStamp)
		clear(e.serStamp)
		e.epoch = 1
	}
	ep := e.epoch
	sc := getEncodeScratch(n)
	defer encodeScratchPool.Put(sc)
	strB := array.NewStringBuilder(memory.DefaultAllocator)
	defer strB.Release()
	var nstr uint32
	var prevTS, prevIngest int64
	for i := range batch {
		s := &batch[i]
		sc.ts[i], prevTS = zigzag(s.TS-prevTS), s.TS
		sc.its[i], prevIngest = zigzag(s.IngestTS-prevIngest), s.IngestTS
		sc.listOff[i] = int32(nstr)
		in := &e.series[s.Series]
		for c, num := range in.nums {
			if e.strStamp[num] != ep {
				e.strStamp[num], e.strIndex[num] = ep, nstr
				nstr++
				strB.Append(e.strs[num])
			}
			sc.labels[c][i] = e.strIndex[num]
		}
		bits := math.Float64bits(s.Value)
		has := e.serStamp[s.Series] == ep
		var prev uint64
		if has {
			prev = e.serPrev[s.Series]
		}
		sc.kinds[i], sc.words[i] = valueWord(bits, prev, has)
		e.serStamp[s.Series], e.serPrev[s.Series] = ep, bits
	}
	return sc.finish(dst, site, n, strB, int(nstr), comp)
}

// selected reports whether the forwarding mode sf selects a sample of
// series in at time ts, as Edge.forward does for a schema.Sample.
func (e *SeriesEncoder) selected(sf *SampleConfig, in *seriesInfo, ts int64) bool {
	mode := sf.Mode
	if m, ok := sf.Devices[e.strs[in.nums[0]]]; ok {
		mode = m
	}
	switch mode {
	case SamplesAll:
		return true
	case SamplesSampled:
		h := in.hash
		for i := range 8 {
			h = fnvByte(h, byte(ts>>(8*i)))
		}
		return h%uint64(sf.Every) == 0
	default:
		return false
	}
}

// PublishSeriesSamples is PublishSamples for samples of interned series
// (an edge's store's accepted samples), encoded by enc: the same
// selection, messages and ids as PublishSamples of the same samples with
// their labels. It keeps no reference to batch. Calls sharing enc must
// not run concurrently.
func (e *Edge) PublishSeriesSamples(ctx context.Context, enc *SeriesEncoder, batch []SeriesSample) (int, error) {
	sf := &e.cfg.SampleForwarding
	sel := batch
	if sf.Mode != SamplesAll || len(sf.Devices) > 0 {
		sel = enc.selBuf[:0]
		for i := range batch {
			in, err := enc.info(batch[i].Series)
			if err != nil {
				return 0, err
			}
			if enc.selected(sf, in, batch[i].TS) {
				sel = append(sel, batch[i])
			}
		}
		enc.selBuf = sel[:0]
	}
	e.m.samplesKept.Add(float64(len(batch) - len(sel)))
	subj := subjectPrefix(e.cfg.Site, KindSamples) + ".arrow"
	sent := 0
	for len(sel) > 0 {
		n := min(len(sel), sf.MaxPerMessage)
		data, id, err := enc.Encode(enc.encBuf[:0], e.cfg.Site, sel[:n], sf.Compression)
		if err != nil {
			return sent, err
		}
		enc.encBuf = data[:0]
		if err := e.publish(ctx, KindSamples, subj, id, data, ""); err != nil {
			return sent, err
		}
		e.m.samplesSent.Add(float64(n))
		sent += n
		sel = sel[n:]
	}
	return sent, nil
}
