package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// consoleShots, when set, is where TestConsole saves a screenshot of each
// page (make screenshots: docs/img).
var consoleShots = flag.String("console.screenshots", "", "directory to save console-<page>.png screenshots into")

// browserPath finds Debian's chromium, or skips the test (fails with
// NETFEAT_REQUIRE_BROWSER=1, as make test sets).
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("NETFEAT_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH and NETFEAT_REQUIRE_BROWSER=1 (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: apt-get install chromium to run the console's browser tests")
	return ""
}

// browser is a headless chromium driven over the DevTools protocol, with
// every page error it reports collected: uncaught exceptions, console.error
// calls and error log entries (failed loads, CSP violations).
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath(t)),
		chromedp.NoSandbox, chromedp.WindowSize(1400, 900), chromedp.Flag("hide-scrollbars", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: bctx}
	err := chromedp.Listen(bctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *log.EventEntryAdded:
			// A 404 of /v1/tables is expected from a service without it:
			// the page then lists the tables from information_schema.
			if e.Entry.Level == log.EntryLevelError && !(strings.HasSuffix(e.Entry.URL, "/v1/tables") && strings.Contains(e.Entry.Text, "404")) {
				msg = "log: " + e.Entry.Text + " " + e.Entry.URL
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	for _, cmd := range []cdp.Command[cdp.Empty, cdp.Empty]{log.Enable, runtime.Enable} {
		if _, err := chromedp.Call(bctx, cmd, cdp.Empty{}); err != nil {
			t.Fatalf("chromium %s: %v", cmd.Method, err)
		}
	}
	return b
}

// takeErrors returns the errors collected since the last call.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
}

// waitTrue evaluates a JavaScript expression until it is true, within d.
func (b *browser) waitTrue(t *testing.T, what, expr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
			t.Fatalf("%s: not within %v (last error %v); the page shows:\n%s", what, d, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// eval evaluates a JavaScript expression into T.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shot saves the viewport as dir/console-<name>.png when screenshots are
// asked for.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	if *consoleShots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(*consoleShots, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*consoleShots, "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsole runs `netfeat demo` and drives its web console in headless
// chromium: each page loads without a console error, the Actions page shows
// the congestion action firing during the demo's first congestion episode,
// an Entity chart has points, a SQL query returns rows and a failing one
// shows DuckDB's message, and names that are HTML render as text.
func TestConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b := newBrowser(t, ctx)

	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.CommandContext(ctx, netfeatBin, "demo", "--http-listen", httpAddr, "--nats-listen", natsAddr,
		"--speed", "4", "--duration", "3m", "--recordings", "../testdata/snmp")
	stdout, stderr := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("demo stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	})
	base := "http://" + httpAddr
	testkit.Eventually(t, "the demo names its console", func() bool { return strings.Contains(stdout.String(), "== web console: "+base+"/ ") })
	testkit.Eventually(t, "the demo's HTTP listener answers /readyz", func() bool {
		res, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	visit := func(t *testing.T, hash string) {
		t.Helper()
		if err := chromedp.Do(b.ctx, chromedp.Navigate(base+"/"+hash)); err != nil {
			t.Fatalf("navigate %s: %v", hash, err)
		}
	}
	noErrors := func(t *testing.T) {
		t.Helper()
		status := eval[string](t, b, `document.querySelector("#status.error") ? document.getElementById("status").textContent : ""`)
		if status != "" {
			t.Errorf("the page shows an error: %s", status)
		}
		for _, e := range b.takeErrors() {
			t.Errorf("browser: %s", e)
		}
	}

	// The demo at --speed 4 congests the Nokia's uplink from 0:05 to 0:24.
	t.Run("actions", func(t *testing.T) {
		visit(t, "#/actions")
		b.waitTrue(t, "a firing action on nokia-7210/to_bng-a",
			`!!document.querySelector('#actions-active tr[data-state="firing"][data-device="nokia-7210"][data-component="to_bng-a"]')`, 60*time.Second)
		features := eval[int](t, b, `document.querySelector('#actions-active tr[data-state="firing"][data-device="nokia-7210"] .features').children.length`)
		if features == 0 {
			t.Errorf("the firing action shows no features")
		}
		b.shot(t, "actions")
		noErrors(t)
	})
	t.Run("devices", func(t *testing.T) {
		visit(t, "#/devices")
		b.waitTrue(t, "the three demo devices, up", `document.querySelectorAll('#devices tbody tr').length === 3 &&
			[...document.querySelectorAll('#devices tbody tr')].every(r => r.children[1].textContent === "up")`, 30*time.Second)
		b.shot(t, "devices")
		eval[bool](t, b, `(() => { const f = document.getElementById('devices-filter'); f.value = 'NOKIA'; f.dispatchEvent(new Event('input')); return true })()`)
		b.waitTrue(t, "the filter keeps nokia-7210 alone", `document.querySelectorAll('#devices tbody tr').length === 1 &&
			document.querySelector('#devices tbody tr').dataset.device === "nokia-7210"`, 10*time.Second)
		eval[bool](t, b, `document.querySelector('#devices tr[data-device="nokia-7210"] a').click(), true`)
		b.waitTrue(t, "the device page lists its components", `location.hash === "#/device/nokia-7210" &&
			document.querySelectorAll('#components tbody tr').length > 1`, 30*time.Second)
		b.shot(t, "device")
		noErrors(t)
	})
	t.Run("entity", func(t *testing.T) {
		visit(t, "#/entity/nokia-7210/to_bng-a")
		b.waitTrue(t, "a raw metric chart with points",
			`[...document.querySelectorAll('#metric-charts .chart')].some(c => +c.dataset.points > 1)`, 30*time.Second)
		b.waitTrue(t, "a feature chart with points",
			`[...document.querySelectorAll('#feature-charts .chart')].some(c => +c.dataset.points > 0)`, 90*time.Second)
		time.Sleep(1500 * time.Millisecond) // a live update or two
		b.shot(t, "entity")
		noErrors(t)
	})
	t.Run("sql", func(t *testing.T) {
		visit(t, "#/sql")
		b.waitTrue(t, "the table list", `document.querySelectorAll('.tables details').length > 0`, 20*time.Second)
		run := func(q string) {
			t.Helper()
			eval[bool](t, b, fmt.Sprintf(`document.getElementById("sql-editor").value = %s, document.getElementById("sql-run").click(), true`, jsString(q)))
		}
		run("SELECT ts, device, component, value FROM samples WHERE metric = 'interface.out.utilization' ORDER BY ts LIMIT 500")
		b.waitTrue(t, "result rows and a chart", `document.querySelectorAll('#sql-table tbody tr').length > 0 &&
			!!document.querySelector('#sql-chart .uplot')`, 20*time.Second)
		b.shot(t, "sql")
		run("SELECT no_such_column FROM samples")
		b.waitTrue(t, "DuckDB's message", `(document.querySelector('#sql-error') || {}).textContent?.includes('no_such_column')`, 20*time.Second)
		// The failed query's 400 is the browser's log entry to expect.
		for _, e := range b.takeErrors() {
			if !strings.Contains(e, "status of 400") || !strings.HasSuffix(e, "/v1/query") {
				t.Errorf("browser: %s", e)
			}
		}
		b.shot(t, "sql-error")
		noErrors(t)
	})
	t.Run("models", func(t *testing.T) {
		visit(t, "#/models")
		b.waitTrue(t, "the congestion model, live", `!!document.querySelector('#models tr[data-model="congestion"]') &&
			document.querySelectorAll('#scores tbody tr').length > 0`, 20*time.Second)
		b.shot(t, "models")
		noErrors(t)
	})
	// Names are the operator's devices' (an interface's description may be
	// anything): they must render as text, and reach SQL as literals.
	t.Run("escaping", func(t *testing.T) {
		for _, name := range []string{`<script>window.pwned=1</script>`, `<img src=x onerror="window.pwned=2">`, `it's "quoted" & <b>bold</b>`} {
			visit(t, "#/entity/nokia-7210/"+urlPathEscape(name))
			b.waitTrue(t, "the entity page", `!!document.querySelector('.entity-name') && /samples/.test(document.body.innerText)`, 20*time.Second)
			got := eval[string](t, b, `document.querySelector('.entity-name').textContent`)
			injected := eval[bool](t, b, `!!document.querySelector('main script, main img, main b') || window.pwned !== undefined`)
			if got != name || injected {
				t.Errorf("interface %q rendered as %q (markup injected: %v)", name, got, injected)
			}
			visit(t, "#/device/"+urlPathEscape(name))
			b.waitTrue(t, "the device page", `/Not a configured target/.test(document.body.innerText)`, 20*time.Second)
			got = eval[string](t, b, `document.querySelector('.device-name').textContent`)
			injected = eval[bool](t, b, `!!document.querySelector('main script, main img, main b') || window.pwned !== undefined`)
			if got != name || injected {
				t.Errorf("device %q rendered as %q (markup injected: %v)", name, got, injected)
			}
			noErrors(t)
		}
		visit(t, "#/sql")
		b.waitTrue(t, "the SQL editor", `!!document.getElementById("sql-editor")`, 20*time.Second)
		eval[bool](t, b, `document.getElementById("sql-editor").value = 'SELECT \'<img src=x onerror="window.pwned=3">\' AS model', document.getElementById("sql-run").click(), true`)
		b.waitTrue(t, "the value as text", `document.querySelector('#sql-table tbody td')?.textContent === '<img src=x onerror="window.pwned=3">' &&
			!document.querySelector('main img') && window.pwned === undefined`, 20*time.Second)
		noErrors(t)
	})
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// urlPathEscape escapes a name for the console's hash routes as the page's
// encodeURIComponent does.
func urlPathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TestConsoleLoad measures the console against a running service named by
// NETFEAT_CONSOLE_URL (skipped without it; docs/performance.md has the
// command): for each page, the time from navigation start until its data
// is on screen, in the browser (median and worst of 5 loads), and the
// Entity page's one request for an hour of an entity's raw metrics (the
// entity with the most samples): its size and time, and the time until
// the page's charts show the hour.
func TestConsoleLoad(t *testing.T) {
	base := strings.TrimRight(os.Getenv("NETFEAT_CONSOLE_URL"), "/")
	if base == "" {
		t.Skip("NETFEAT_CONSOLE_URL is not set: point it at a running netfeat to measure the console")
	}
	r := postQuery(t, base, `SELECT device, component FROM series WHERE component <> '' GROUP BY ALL ORDER BY sum(samples) DESC, 1, 2 LIMIT 1`)
	if len(r.Rows) != 1 {
		t.Fatalf("no entity with samples: %+v", r)
	}
	measureConsole(t, base, r.Rows[0][0].(string), r.Rows[0][1].(string), true)
}

// TestConsoleHour measures the console on an hour of one interface's raw
// metrics at 1 s (20 metrics, 72,000 samples) beside 1,000 other devices'
// samples every 10 s, appended to the store of a service run in-process
// (NETFEAT_CONSOLE_HOUR=1; docs/performance.md).
func TestConsoleHour(t *testing.T) {
	if os.Getenv("NETFEAT_CONSOLE_HOUR") != "1" {
		t.Skip("NETFEAT_CONSOLE_HOUR=1 runs this measurement")
	}
	cfg := service.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	svc, err := service.New(&cfg, service.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	const device, component = "hour-r1", "xe-0/0/0"
	end := time.Now().Add(-time.Second).Truncate(time.Second)
	start := end.Add(-time.Hour + 5*time.Second)
	var batch []schema.Sample
	for ts := start; !ts.After(end); ts = ts.Add(time.Second) {
		batch = batch[:0]
		for m := range 20 {
			batch = append(batch, schema.Sample{TS: ts.UnixNano(), IngestTS: ts.UnixNano(), Entity: schema.Entity{Device: device, Component: component},
				Metric: fmt.Sprintf("bench.metric_%02d", m), Value: float64(m) + float64(ts.Unix()%600)/600})
		}
		if ts.Unix()%10 == 0 {
			for d := range 1000 {
				for i := range 2 {
					batch = append(batch, schema.Sample{TS: ts.UnixNano(), IngestTS: ts.UnixNano(),
						Entity: schema.Entity{Device: fmt.Sprintf("r%04d", d), Component: fmt.Sprintf("if%d", i)}, Metric: "interface.in.octets", Value: float64(ts.Unix())})
				}
			}
		}
		if err := svc.Store().Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// No collector runs, so there is no inventory for the Devices page.
	measureConsole(t, "http://"+svc.HTTP().Addr(), device, component, false)
}

// measureConsole loads each page of the console at base, and the Entity
// page of device/component over an hour, and logs the times and sizes.
func measureConsole(t *testing.T, base, device, component string, withDevices bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := newBrowser(t, ctx)
	ent := struct{ device, component string }{device, component}
	entity := "#/entity/" + urlPathEscape(ent.device) + "/" + urlPathEscape(ent.component)
	pages := []struct{ name, hash, ready string }{
		{"actions", "#/actions", `!!document.querySelector('#actions-active, #actions-resolved') || /No action is firing/.test(document.body.innerText)`},
		{"devices", "#/devices", `document.querySelectorAll('#devices tbody tr').length > 0`},
		{"sql", "#/sql", `document.querySelectorAll('.tables details').length > 0`},
		{"models", "#/models", `!!document.querySelector('#models')`},
		{"entity", entity, `[...document.querySelectorAll('#metric-charts .chart')].some(c => +c.dataset.points > 1)`},
	}
	for _, p := range pages {
		if p.name == "devices" && !withDevices {
			continue
		}
		var ms, dcl []float64
		for range 5 {
			if err := chromedp.Do(b.ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/"+p.hash)); err != nil {
				t.Fatal(err)
			}
			v, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`new Promise((done, fail) => { setTimeout(() => fail(new Error("no data within 30 s")), 30000);
				const f = () => (`+p.ready+`) ? done(performance.now()) : requestAnimationFrame(f); f(); })`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			ms = append(ms, v)
			d, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd`))
			if err != nil {
				t.Fatal(err)
			}
			dcl = append(dcl, d)
		}
		slices.Sort(ms)
		slices.Sort(dcl)
		t.Logf("page %-8s page and scripts loaded (DOMContentLoaded) %4.0f ms median; data on screen after %4.0f ms median, %4.0f ms worst (5 loads)",
			p.name, dcl[2], ms[2], ms[4])
	}
	for _, e := range b.takeErrors() {
		t.Errorf("browser: %s", e)
	}

	// The Entity page's hour of raw metrics, as its request asks for it.
	where := fmt.Sprintf("device = '%s' AND component = '%s'", strings.ReplaceAll(ent.device, "'", "''"), strings.ReplaceAll(ent.component, "'", "''"))
	q := `SELECT metric, list(epoch_ms(ts) ORDER BY ts) AS t, list(value ORDER BY ts) AS v FROM samples WHERE ` + where +
		` AND ts >= now() - INTERVAL 60 MINUTE GROUP BY metric ORDER BY metric`
	var sizes []int
	var took []time.Duration
	points, metrics := 0, 0
	for range 5 {
		t0 := time.Now()
		body := postQueryBody(t, base, q)
		took = append(took, time.Since(t0))
		sizes = append(sizes, len(body))
		var r queryResult
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		points, metrics = 0, len(r.Rows)
		for _, row := range r.Rows {
			points += len(row[1].([]any))
		}
	}
	slices.Sort(took)
	t.Logf("entity %s/%s, 1 hour: %d metrics' %d points in one request of %d bytes, %v median, %v worst (5 requests)",
		ent.device, ent.component, metrics, points, sizes[0], took[2].Round(time.Millisecond), took[4].Round(time.Millisecond))
	var render []float64
	for range 3 {
		if err := chromedp.Do(b.ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/"+entity)); err != nil {
			t.Fatal(err)
		}
		b.waitTrue(t, "the 15-minute charts", pages[4].ready, time.Minute)
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`new Promise(done => {
			const sel = document.getElementById("range"); const t0 = performance.now();
			sel.value = "60"; sel.dispatchEvent(new Event("change"));
			const f = () => [...document.querySelectorAll('#metric-charts .chart')].reduce((n, c) => n + (+c.dataset.points || 0), 0) >= `+fmt.Sprint(points*95/100)+`
				? done(performance.now() - t0) : requestAnimationFrame(f);
			requestAnimationFrame(f); })`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		render = append(render, v)
	}
	slices.Sort(render)
	t.Logf("entity page, switch to 1 hour: %d points on its charts after %.0f ms median, %.0f ms worst (3 switches)", points, render[1], render[2])
	for _, e := range b.takeErrors() {
		t.Errorf("browser: %s", e)
	}
}

type queryResult struct {
	Columns []struct{ Name, Type string } `json:"columns"`
	Rows    [][]any                       `json:"rows"`
}

func postQueryBody(t *testing.T, base, sql string) []byte {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"sql": sql})
	res, err := http.Post(base+"/v1/query", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("query %s: %d %s %v", sql, res.StatusCode, body, err)
	}
	return body
}

func postQuery(t *testing.T, base, sql string) queryResult {
	t.Helper()
	var r queryResult
	if err := json.Unmarshal(postQueryBody(t, base, sql), &r); err != nil {
		t.Fatal(err)
	}
	return r
}
