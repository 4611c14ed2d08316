// Memory regions for chunk columns, mapped outside the Go heap where that
// pays, and the pool of pre-faulted spares. A region is reference-counted
// and released by its last holder, on any goroutine; the pool's mapper
// goroutine (started by Start, ended by Stop through hotTier.close) keeps
// spares ready for the appender that seals the open chunk.

package featurestore

import (
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// region is the memory behind one hot-tier chunk's columns. Large regions
// are anonymous mappings outside the Go heap: the garbage collector neither
// scans them nor counts them towards its heap goal, so GOGC headroom is
// not paid on sample data, and the memory goes back to the kernel the
// moment the last reference is dropped.
//
// A region is reference counted. The hot tier holds one reference while
// the chunk is in memory; every Arrow buffer handed out by SnapshotSamples
// holds one, released with the record batch; the chunk writer holds one
// while it encodes the chunk. The memory is unmapped when the count
// reaches zero, so a batch used after its Release may fault: the Arrow
// contract (release what you receive, do not use it afterwards) is
// load-bearing here.
type region struct {
	b      []byte
	mapped bool // b is an anonymous mapping (else Go heap)
	refs   atomic.Int64
	pool   *regionPool // where a released region of the pool's size goes back
}

// minMappedRegion is the size from which a region is mapped rather than
// taken from the Go heap: small, age-sealed chunks are not worth a system
// call and a page each.
const minMappedRegion = 64 << 10

// regionsMapped counts live mapped bytes (tests check that everything is
// returned).
var regionsMapped atomic.Int64

// newRegion returns a zeroed region of n bytes with one reference.
func newRegion(n int) *region {
	r := &region{}
	if n >= minMappedRegion {
		if b, err := mapAnon(n); err == nil {
			r.b, r.mapped = b, true
			regionsMapped.Add(int64(len(b)))
		}
	}
	if r.b == nil {
		r.b = make([]byte, n)
	}
	r.refs.Store(1)
	return r
}

// size is the bytes the region occupies (a mapping is whole pages). The
// slice header never changes after newRegion, so this is safe to read
// while another goroutine releases the region.
func (r *region) size() int64 { return int64(len(r.b)) }

// retain adds a reference; the caller already holds one.
func (r *region) retain() { r.refs.Add(1) }

// tryRetain adds a reference unless the region was already freed. Readers
// that found the region through the hot tier's view (without holding a
// reference) use it, because retention may release the tier's reference
// concurrently.
func (r *region) tryRetain() bool {
	for {
		n := r.refs.Load()
		if n <= 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference and frees the memory with the last one.
func (r *region) release() {
	n := r.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("featurestore: region released too often")
	}
	if r.pool != nil && r.pool.put(r) {
		return
	}
	if r.mapped {
		regionsMapped.Add(-int64(len(r.b)))
		unmap(r.b)
	}
}

// regionPool keeps up to maxSpares regions of one size (the open chunk's)
// ready, their pages already faulted in: a page fault on fresh anonymous
// memory costs about 12 µs on the VMs this was measured on, 320 of them
// per 65,536-row chunk, and they would otherwise land on the committer.
// Spares come from released regions of that size and from a goroutine
// that maps new ones with MAP_POPULATE whenever one is taken. They count
// in the process's RSS (at most two chunks' worth).
type regionPool struct {
	size int
	mu   sync.Mutex
	free []*region
	want chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

const maxSpares = 2

// newRegionPool makes an empty pool; start starts the goroutine that fills
// it.
func newRegionPool(size int) *regionPool {
	return &regionPool{size: size, want: make(chan struct{}, 1), done: make(chan struct{})}
}

// start starts the goroutine that maps spares; close ends it. A pool never
// started hands out fresh regions.
func (p *regionPool) start() {
	if p.size < minMappedRegion {
		return // Go heap regions: nothing to gain
	}
	p.wg.Go(func() {
		for {
			select {
			case <-p.want:
			case <-p.done:
				return
			}
			for p.spares() < maxSpares {
				b, err := mapAnonPopulated(p.size)
				if err != nil {
					break
				}
				regionsMapped.Add(int64(len(b)))
				r := &region{b: b, mapped: true, pool: p}
				if !p.put(r) { // full, or closing
					regionsMapped.Add(-int64(len(b)))
					unmap(b)
					break
				}
			}
		}
	})
	p.want <- struct{}{}
}

func (p *regionPool) spares() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// get returns a region of the pool's size with one reference: a spare if
// there is one (its contents are stale: the hot tier reads only rows it
// wrote), else a new one.
func (p *regionPool) get() *region {
	p.mu.Lock()
	var r *region
	if n := len(p.free); n > 0 {
		r = p.free[n-1]
		p.free = p.free[:n-1]
	}
	p.mu.Unlock()
	select {
	case p.want <- struct{}{}:
	default:
	}
	if r == nil {
		r = newRegion(p.size)
		r.pool = p
	}
	r.refs.Store(1)
	return r
}

// put keeps a released region as a spare, or reports false.
func (p *regionPool) put(r *region) bool {
	if !r.mapped || len(r.b) != p.size {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
	}
	if len(p.free) >= maxSpares {
		return false
	}
	p.free = append(p.free, r)
	return true
}

// close stops the goroutine and unmaps the spares; regions released later
// are unmapped.
func (p *regionPool) close() {
	p.mu.Lock()
	close(p.done)
	free := p.free
	p.free = nil
	p.mu.Unlock()
	p.wg.Wait()
	for _, r := range free {
		regionsMapped.Add(-int64(len(r.b)))
		unmap(r.b)
	}
}

// buffer wraps b (a part of the region) as an Arrow buffer that holds a
// reference to the region until Arrow releases it. The caller passes a
// reference it already took.
func (r *region) buffer(b []byte) *memory.Buffer {
	return memory.NewBufferWithAllocator(b, regionRef{r})
}

// regionRef is the memory.Allocator behind region buffers: freeing the
// buffer releases the region reference it held. Buffers built on it are
// never resized.
type regionRef struct{ r *region }

func (a regionRef) Allocate(int) []byte { panic("featurestore: region buffers do not allocate") }
func (a regionRef) Reallocate(int, []byte) []byte {
	panic("featurestore: region buffers do not reallocate")
}
func (a regionRef) Free([]byte) { a.r.release() }
