package inference

// The current state of every action (the SQL `actions` table, GET
// /v1/actions) and its persistence: a lifecycle's state is saved to the
// runtime's Badger database after each transition or repeat, coalesced
// every 100 ms by one writer goroutine, and loaded by Start, so that a
// restart neither fires an action again nor forgets one that fires.

import (
	"cmp"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/schema"
)

// Actions returns the current state of every action that is not inactive
// (pending, firing, or resolved and not yet forgotten), ordered by model
// and entity.
func (r *Runtime) Actions() []ActionState {
	var out []ActionState
	for _, s := range r.order {
		out = s.lcs.states(out)
	}
	slices.SortFunc(out, func(a, b ActionState) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.Entity.Device, b.Entity.Device),
			cmp.Compare(a.Entity.Component, b.Entity.Component))
	})
	return out
}

// ActionRecords returns Actions as one record of schema.ActionsSchema, for
// the SQL `actions` table. The caller releases it.
func (r *Runtime) ActionRecords() []arrow.RecordBatch {
	all := r.Actions()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.ActionsSchema)
	defer b.Release()
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	b.Reserve(len(all))
	for i := range all {
		a := &all[i]
		str(0).Append(a.Model)
		str(1).Append(a.ModelVersion)
		str(2).Append(a.Fingerprint)
		str(3).Append(a.Entity.Device)
		str(4).Append(a.Entity.Component)
		str(5).Append(a.View)
		str(6).Append(a.Trigger)
		str(7).Append(a.State)
		ts(8).Append(arrow.Timestamp(a.Since.UnixNano()))
		str(9).Append(a.Action)
		b.Field(10).(*array.Float64Builder).Append(a.Score)
		str(11).Append(a.Reason)
		ts(12).Append(arrow.Timestamp(a.LastDecision.UnixNano()))
		if a.LastPublished.IsZero() {
			ts(13).AppendNull()
		} else {
			ts(13).Append(arrow.Timestamp(a.LastPublished.UnixNano()))
		}
		b.Field(14).(*array.BooleanBuilder).Append(a.Flapping)
		b.Field(15).(*array.Int64Builder).Append(a.Suppressed)
	}
	return []arrow.RecordBatch{b.NewRecordBatch()}
}

// lifeKeyPrefix starts the Badger keys of saved lifecycles:
// "lc/" model NUL device NUL component.
const lifeKeyPrefix = "lc/"

// savedLifecycle is a lifecycle as saved.
type savedLifecycle struct {
	State     string                `json:"state"`
	Since     int64                 `json:"since"`
	HeldSince int64                 `json:"held_since,omitempty"`
	Holding   bool                  `json:"holding,omitempty"`
	LastHeld  int64                 `json:"last_held,omitempty"`
	LastT     int64                 `json:"last_t"`
	LastWin   int64                 `json:"last_win,omitempty"`
	LastSent  int64                 `json:"last_sent,omitempty"`
	Published string                `json:"published,omitempty"`
	FlapScore float64               `json:"flap_score,omitempty"`
	FlapAt    int64                 `json:"flap_at,omitempty"`
	Flapping  bool                  `json:"flapping,omitempty"`
	Suppress  int64                 `json:"suppress,omitempty"`
	LastEvent *schema.DecisionEvent `json:"last_event,omitempty"`
	LastHolds bool                  `json:"last_holds,omitempty"`
	Shown     *ActionState          `json:"shown,omitempty"`
}

// lifeStore saves lifecycles to Badger.
type lifeStore struct {
	db    *badger.DB
	log   *slog.Logger
	mu    sync.Mutex
	dirty map[string][]byte // key → value; nil value deletes
	errs  func()
	stop  chan struct{}
	done  chan struct{}
}

func newLifeStore(db *badger.DB, log *slog.Logger) *lifeStore {
	return &lifeStore{db: db, log: log, dirty: map[string][]byte{}, errs: func() {}}
}

func lifeKey(model string, e schema.Entity) string {
	return lifeKeyPrefix + model + "\x00" + e.Device + "\x00" + e.Component
}

// save queues lc's state under (model, e). It runs on the worker that owns
// the lifecycle.
func (ls *lifeStore) save(model string, e schema.Entity, lc *lifecycle) {
	if ls == nil {
		return
	}
	v, err := json.Marshal(savedLifecycle{
		State: lc.state, Since: lc.since, HeldSince: lc.heldSince, Holding: lc.holding, LastHeld: lc.lastHeld, LastT: lc.lastT, LastWin: lc.lastWin,
		LastSent: lc.lastSent, Published: lc.published, FlapScore: lc.flapScore, FlapAt: lc.flapAt, Flapping: lc.flapping,
		Suppress: lc.suppress, LastEvent: lc.lastEvent, LastHolds: lc.lastHolds, Shown: lc.shown.Load(),
	})
	if err != nil {
		ls.errs()
		return
	}
	ls.mu.Lock()
	ls.dirty[lifeKey(model, e)] = v
	ls.mu.Unlock()
}

// load restores the saved lifecycles of the configured slots; those of
// models no longer configured are deleted.
func (ls *lifeStore) load(slots map[string]*slot) error {
	var stale [][]byte
	err := ls.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(lifeKeyPrefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			parts := splitLifeKey(string(k))
			s, ok := slots[parts[0]]
			if !ok || len(parts) != 3 {
				stale = append(stale, k)
				continue
			}
			var sv savedLifecycle
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &sv) }); err != nil {
				ls.log.Warn("saved action state unreadable; starting it afresh", "model", parts[0], "err", err)
				stale = append(stale, k)
				continue
			}
			lc := s.lcs.get(schema.Entity{Device: parts[1], Component: parts[2]})
			lc.state, lc.since, lc.heldSince, lc.lastHeld, lc.lastT, lc.lastWin = sv.State, sv.Since, sv.HeldSince, sv.LastHeld, sv.LastT, sv.LastWin
			lc.lastSent, lc.published, lc.flapScore, lc.flapAt, lc.flapping = sv.LastSent, sv.Published, sv.FlapScore, sv.FlapAt, sv.Flapping
			lc.suppress, lc.lastEvent, lc.lastHolds, lc.holding = sv.Suppress, sv.LastEvent, sv.LastHolds, sv.Holding
			lc.used.Store(time.Now().UnixNano())
			if sv.Shown != nil {
				lc.shown.Store(sv.Shown)
			}
		}
		return nil
	})
	if err != nil {
		return errors.Join(errors.New("load action states"), err)
	}
	if len(stale) > 0 {
		_ = ls.db.Update(func(txn *badger.Txn) error {
			for _, k := range stale {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return nil
}

func splitLifeKey(k string) []string {
	k = k[len(lifeKeyPrefix):]
	var parts []string
	for {
		i := 0
		for i < len(k) && k[i] != 0 {
			i++
		}
		parts = append(parts, k[:i])
		if i == len(k) {
			return parts
		}
		k = k[i+1:]
	}
}

// run writes what was saved every 100 ms until stop.
func (ls *lifeStore) run() {
	ls.stop, ls.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ls.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				ls.flush()
			case <-ls.stop:
				ls.flush()
				return
			}
		}
	}()
}

// close stops the writer after a last flush.
func (ls *lifeStore) close() {
	if ls.stop != nil {
		close(ls.stop)
		<-ls.done
	} else {
		ls.flush()
	}
}

func (ls *lifeStore) flush() {
	ls.mu.Lock()
	if len(ls.dirty) == 0 {
		ls.mu.Unlock()
		return
	}
	batch := ls.dirty
	ls.dirty = map[string][]byte{}
	ls.mu.Unlock()
	wb := ls.db.NewWriteBatch()
	defer wb.Cancel()
	for k, v := range batch {
		if err := wb.Set([]byte(k), v); err != nil {
			ls.errs()
			ls.log.Warn("action state not saved", "err", err)
			return
		}
	}
	if err := wb.Flush(); err != nil {
		ls.errs()
		ls.log.Warn("action states not saved", "states", len(batch), "err", err)
	}
}
