package recording

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/gnmivalue"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/yangjson"
)

// GNMIFormat names a recorded gNMI/MDT capture format.
type GNMIFormat string

// Capture formats ReadGNMICapture understands.
const (
	// FormatPipelineJSON is bigmuddy-network-telemetry-pipeline's JSON
	// output: [{"Telemetry":{"encoding_path":...},"Rows":[{"Timestamp","Keys","Content"}]}].
	FormatPipelineJSON GNMIFormat = "pipeline-json"
	// FormatGPBKV is Cisco MDT self-describing GPB (key-value) rendered as
	// JSON, snake_case (pipeline "jsonkv") or camelCase (Telegraf
	// cisco_telemetry_mdt test packets), including NX-OS DME trees.
	FormatGPBKV GNMIFormat = "gpbkv-json"
	// FormatGNMIProto is gNMI SubscribeResponse messages in protobuf JSON
	// (a JSON array or a stream of objects), values possibly json_ietf.
	FormatGNMIProto GNMIFormat = "gnmi-protojson"
	// FormatGNMIC is gnmic's event/JSON output: {"source","timestamp",
	// "updates":[{"Path","values":{...}}]}, one object or one per line.
	FormatGNMIC GNMIFormat = "gnmic-json"
)

// ErrCaptureFormat is wrapped when a capture's format is not recognised.
var ErrCaptureFormat = errors.New("unrecognised gNMI capture format")

// maxCaptureBytes bounds a capture read into memory.
const maxCaptureBytes = 256 << 20

// ReadGNMICapture reads a recorded gNMI or Cisco MDT capture in any of the
// GNMIFormat formats (detected from its content) and returns the
// observations a gNMI collector would have emitted: Origin set from the
// gNMI origin or the YANG module of the encoding path, Path with list keys
// in brackets ("interfaces/interface[name=Gi0/0/0/0]/state/counters/in-octets"),
// values typed as the gNMI collector types them (gNMI values by package
// gnmivalue, JSON content flattened by package yangjson, GPB-KV fields as
// the gNMI value of the same protobuf type: uint_val as KindCounter64,
// int_val as KindInteger whatever its sign, enumerations as KindEnum,
// RFC 7951 numeric strings as numbers), and DeviceTime and RecvTime set to
// the message timestamp. NX-OS DME objects become
// "<dn>/<attribute>" paths with origin "DME". device names the target; when
// empty, the node id or source recorded in the capture is used. name is
// used in error messages.
func ReadGNMICapture(r io.Reader, name, device string) ([]schema.Observation, error) {
	obs, _, err := ReadGNMICaptureWith(r, name, device, ReadOptions{Strict: true})
	return obs, err
}

// ReadGNMICaptureWith is ReadGNMICapture that, unless opts.Strict, skips
// what it cannot parse and reports it once per kind: a message that does
// not decode as the capture's format ("message"), a gNMI value whose JSON
// does not parse ("value", the rest of its message is kept) and broken JSON
// between messages ("json", reading resumes on the next line, which
// recovers JSON Lines captures). The error is then only for a capture that
// cannot be read or whose format is not recognised.
func ReadGNMICaptureWith(r io.Reader, name, device string, opts ReadOptions) ([]schema.Observation, []Skipped, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCaptureBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read: %w", name, err)
	}
	if len(data) > maxCaptureBytes {
		return nil, nil, fmt.Errorf("%s: capture larger than %d bytes", name, maxCaptureBytes)
	}
	format, err := DetectGNMIFormat(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	var sk skips
	where := func(off int64) string {
		return fmt.Sprintf("%s:%d", name, 1+bytes.Count(data[:min(int(off), len(data))], []byte{'\n'}))
	}
	type message struct {
		raw json.RawMessage
		off int64 // byte offset in data, for its line
	}
	var msgs []message
	base := int64(0)
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := base + dec.InputOffset()
		err := decodeMessages(dec, func(m json.RawMessage, off int64) { msgs = append(msgs, message{m, base + off}) })
		if err == io.EOF {
			break
		}
		if err == nil {
			continue
		}
		if opts.Strict {
			return nil, nil, fmt.Errorf("%s: %s: %w", name, format, err)
		}
		// Resume after the line on which the broken value started.
		at := start + int64(len(data[start:])-len(bytes.TrimLeft(data[start:], " \t\r\n")))
		sk.add("json", where(at), fmt.Errorf("%s: %w", format, err))
		nl := bytes.IndexByte(data[at:], '\n')
		if nl < 0 {
			break
		}
		base = at + int64(nl) + 1
		dec = json.NewDecoder(bytes.NewReader(data[base:]))
	}
	var skipValue func(path string, err error)
	var out []schema.Observation
	for i, m := range msgs {
		if !opts.Strict {
			skipValue = func(path string, err error) { sk.add("value", where(m.off), fmt.Errorf("path %s: %w", path, err)) }
		}
		var obs []schema.Observation
		switch format {
		case FormatPipelineJSON:
			obs, err = pipelineObservations(m.raw, device)
		case FormatGPBKV:
			obs, err = gpbkvObservations(m.raw, device)
		case FormatGNMIProto:
			obs, err = protoObservations(m.raw, device, skipValue)
		case FormatGNMIC:
			obs, err = gnmicObservations(m.raw, device)
		}
		if err != nil {
			if opts.Strict {
				return nil, nil, fmt.Errorf("%s: message %d: %w", name, i, err)
			}
			sk.add("message", where(m.off), fmt.Errorf("message %d: %w", i, err))
			continue
		}
		out = append(out, obs...)
	}
	return out, sk.list, nil
}

// decodeMessages reads the next top-level JSON value from dec: one message,
// or an array whose elements are messages. emit gets each message and its
// offset in dec's input.
func decodeMessages(dec *json.Decoder, emit func(json.RawMessage, int64)) error {
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return err
	}
	off := dec.InputOffset() - int64(len(v)) // where v starts
	if len(v) == 0 || v[0] != '[' {
		emit(v, off)
		return nil
	}
	// Re-read the array element by element for each element's offset.
	inner := json.NewDecoder(bytes.NewReader(v))
	if _, err := inner.Token(); err != nil {
		return err
	}
	for inner.More() {
		var m json.RawMessage
		if err := inner.Decode(&m); err != nil {
			return err
		}
		end := inner.InputOffset()
		emit(m, off+end-int64(len(m)))
	}
	return nil
}

// ReadGNMICaptureFile opens and reads a capture file strictly.
func ReadGNMICaptureFile(path, device string) ([]schema.Observation, error) {
	obs, _, err := ReadGNMICaptureFileWith(path, device, ReadOptions{Strict: true})
	return obs, err
}

// ReadGNMICaptureFileWith opens and reads a capture file
// (ReadGNMICaptureWith).
func ReadGNMICaptureFileWith(path, device string, opts ReadOptions) ([]schema.Observation, []Skipped, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	return ReadGNMICaptureWith(bufio.NewReader(f), path, device, opts)
}

// DetectGNMIFormat tells which capture format data is in, from the keys of
// its first JSON object.
func DetectGNMIFormat(data []byte) (GNMIFormat, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return "", fmt.Errorf("%w: %v", ErrCaptureFormat, err)
	}
	first = bytes.TrimSpace(first)
	if len(first) > 0 && first[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(first, &arr); err != nil || len(arr) == 0 {
			return "", fmt.Errorf("%w: empty or invalid array", ErrCaptureFormat)
		}
		first = arr[0]
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(first, &keys); err != nil {
		return "", fmt.Errorf("%w: not a JSON object", ErrCaptureFormat)
	}
	has := func(ks ...string) bool {
		for _, k := range ks {
			if _, ok := keys[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("Telemetry") && has("Rows"):
		return FormatPipelineJSON, nil
	case has("data_gpbkv", "dataGpbkv"):
		return FormatGPBKV, nil
	case has("updates") && has("source", "timestamp"):
		return FormatGNMIC, nil
	case has("update", "sync_response", "syncResponse"):
		return FormatGNMIProto, nil
	}
	return "", ErrCaptureFormat
}

// splitEncodingPath splits "Module:a/b/c" into its module and element names.
func splitEncodingPath(p string) (origin string, elems []string) {
	origin, p = gnmipath.SplitOrigin(strings.TrimPrefix(p, "/"))
	if p == "" {
		return origin, nil
	}
	return origin, strings.Split(p, "/")
}

// keyedPath renders elems with keys attached to the list element: the
// deepest element whose parent is its plural ("interfaces/interface"), or
// else the last element. Keys are written in name order.
func keyedPath(elems []string, keys map[string]string) string {
	at := len(elems) - 1
	for i := len(elems) - 1; i > 0; i-- {
		if elems[i-1] == elems[i]+"s" {
			at = i
			break
		}
	}
	var b []byte
	for i, e := range elems {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, e...)
		if i == at && len(keys) > 0 {
			b = gnmipath.AppendKeys(b, keys)
		}
	}
	return string(b)
}

// flattenJSON emits the leaves of v, decoded with UseNumber, under path
// by the live collector's rules (yangjson.Flatten). A leaf that cannot be
// represented is reported to bad.
func flattenJSON(path string, v any, emit func(path string, o schema.Observation), bad func(path string)) {
	yangjson.Flatten([]byte(path), v, func(p []byte, o schema.Observation, ok bool) {
		if !ok {
			bad(string(p))
			return
		}
		emit(string(p), o)
	})
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func msToNs(v json.Number) int64 {
	ms, err := v.Int64()
	if err != nil {
		f, _ := v.Float64()
		ms = int64(f)
	}
	return ms * 1_000_000
}

// pipelineObservations decodes one message of FormatPipelineJSON.
func pipelineObservations(m json.RawMessage, device string) ([]schema.Observation, error) {
	var msg struct {
		Source    string
		Telemetry struct {
			NodeID       string      `json:"node_id_str"`
			EncodingPath string      `json:"encoding_path"`
			MsgTimestamp json.Number `json:"msg_timestamp"`
		}
		Rows []struct {
			Timestamp json.Number
			Keys      map[string]any
			Content   map[string]any
		}
	}
	if err := decodeNumbers(m, &msg); err != nil {
		return nil, err
	}
	if device == "" {
		device = msg.Telemetry.NodeID
	}
	origin, elems := splitEncodingPath(msg.Telemetry.EncodingPath)
	var out []schema.Observation
	for _, row := range msg.Rows {
		ts := msToNs(row.Timestamp)
		if row.Timestamp == "" {
			ts = msToNs(msg.Telemetry.MsgTimestamp)
		}
		keys := map[string]string{}
		for k, v := range row.Keys {
			keys[k] = fmt.Sprint(v)
		}
		base := keyedPath(elems, keys)
		var bad error
		flattenJSON(base, row.Content, func(p string, o schema.Observation) {
			o.Device, o.Protocol, o.Origin, o.Path, o.DeviceTime, o.RecvTime = device, schema.ProtocolGNMI, origin, p, ts, ts
			out = append(out, o)
		}, func(p string) { bad = fmt.Errorf("path %s: value cannot be represented", p) })
		if bad != nil {
			return nil, bad
		}
	}
	return out, nil
}

// kvField is one field of a self-describing GPB message rendered as JSON.
type kvField struct {
	Name   string
	Fields []kvField
	value  any
	// typ is the value's protobuf type, from the name of its JSON member
	// ("uint64Value", "string_value": "uint64", "string").
	typ string
	has bool
}

func parseKVField(raw map[string]any) kvField {
	f := kvField{}
	for k, v := range raw {
		switch norm := strings.ToLower(strings.ReplaceAll(k, "_", "")); {
		case norm == "name":
			f.Name, _ = v.(string)
		case norm == "fields":
			if arr, ok := v.([]any); ok {
				for _, e := range arr {
					if m, ok := e.(map[string]any); ok {
						f.Fields = append(f.Fields, parseKVField(m))
					}
				}
			}
		case strings.HasSuffix(norm, "value"):
			f.value, f.typ, f.has = v, strings.TrimSuffix(norm, "value"), true
		}
	}
	return f
}

// errKVValue is wrapped when a GPB-KV field's value does not match its type.
var errKVValue = errors.New("not a value of this type")

// kvValue types a GPB-KV field's value as the gNMI collector types the
// TypedValue field of the same protobuf type (package gnmivalue): uint32
// and uint64 as uint_val, sint32 and sint64 as int_val, string as
// string_val, bool, double and float, bytes (base64 in protobuf JSON) as
// bytes_val.
func kvValue(typ string, v any) (schema.Observation, error) {
	str, isStr := v.(string)
	num, isNum := v.(json.Number)
	if isStr && (typ != "string" && typ != "bytes") {
		num, isNum = json.Number(str), true // protobuf JSON writes 64-bit integers as strings
	}
	switch {
	case typ == "string" && isStr:
		return gnmivalue.String(str), nil
	case typ == "bytes" && isStr:
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return schema.Observation{}, fmt.Errorf("bytes value: %w", err)
		}
		return gnmivalue.Bytes(b), nil
	case typ == "bool":
		if b, ok := v.(bool); ok {
			return gnmivalue.Bool(b), nil
		}
	case (typ == "uint32" || typ == "uint64") && isNum:
		u, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return schema.Observation{}, fmt.Errorf("%s value: %w", typ, err)
		}
		return gnmivalue.Uint(u), nil
	case (typ == "sint32" || typ == "sint64") && isNum:
		i, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return schema.Observation{}, fmt.Errorf("%s value: %w", typ, err)
		}
		return gnmivalue.Int(i), nil
	case (typ == "double" || typ == "float") && isNum:
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			return schema.Observation{}, fmt.Errorf("%s value: %w", typ, err)
		}
		return gnmivalue.Float(f), nil
	}
	return schema.Observation{}, fmt.Errorf("%s value %v: %w", typ, v, errKVValue)
}

// gpbkvObservations decodes one message of FormatGPBKV.
func gpbkvObservations(m json.RawMessage, device string) ([]schema.Observation, error) {
	var raw map[string]any
	if err := decodeNumbers(m, &raw); err != nil {
		return nil, err
	}
	get := func(name string) any {
		for k, v := range raw {
			if strings.ToLower(strings.ReplaceAll(k, "_", "")) == name {
				return v
			}
		}
		return nil
	}
	node, _ := get("nodeidstr").(string)
	if device == "" {
		device = node
	}
	encPath, _ := get("encodingpath").(string)
	msgTS := int64(0)
	switch t := get("msgtimestamp").(type) {
	case json.Number:
		msgTS = msToNs(t)
	case string:
		msgTS = msToNs(json.Number(t))
	}
	origin, elems := splitEncodingPath(encPath)
	rows, _ := get("datagpbkv").([]any)
	var out []schema.Observation
	var bad error
	emit := func(origin, path string, f kvField, ts int64) {
		o, err := kvValue(f.typ, f.value)
		if err != nil {
			if bad == nil {
				bad = fmt.Errorf("path %s: %w", path, err)
			}
			return
		}
		o.Device, o.Protocol, o.Origin, o.Path, o.DeviceTime, o.RecvTime = device, schema.ProtocolGNMI, origin, path, ts, ts
		out = append(out, o)
	}
	for _, r := range rows {
		rm, ok := r.(map[string]any)
		if !ok {
			continue
		}
		row := parseKVField(rm)
		ts := msgTS
		if t, ok := rm["timestamp"].(json.Number); ok {
			if n, _ := t.Int64(); n > 0 {
				ts = msToNs(t)
			}
		}
		keys := map[string]string{}
		var content []kvField
		for _, f := range row.Fields {
			switch f.Name {
			case "keys":
				for _, k := range f.Fields {
					if k.has {
						keys[k.Name] = fmt.Sprint(k.value)
					}
				}
			case "content":
				content = f.Fields
			}
		}
		if dme := dmeObjects(content); len(dme) > 0 {
			for _, obj := range dme {
				for _, a := range obj.attrs {
					emit("DME", obj.dn+"/"+a.name, a.field, ts)
				}
			}
			continue
		}
		base := keyedPath(elems, keys)
		var walk func(prefix string, fs []kvField)
		walk = func(prefix string, fs []kvField) {
			for _, f := range fs {
				p := prefix
				if f.Name != "" {
					p = joinPath(prefix, f.Name)
				}
				if f.has {
					emit(origin, p, f, ts)
				}
				walk(p, f.Fields)
			}
		}
		walk(base, content)
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

type dmeAttr struct {
	name  string
	field kvField
}

type dmeObject struct {
	dn    string
	attrs []dmeAttr
}

// dmeObjects finds NX-OS DME objects ("attributes" with a "dn") anywhere
// in a GPB-KV content tree.
func dmeObjects(fs []kvField) []dmeObject {
	var out []dmeObject
	var walk func(fs []kvField)
	walk = func(fs []kvField) {
		for _, f := range fs {
			if f.Name == "attributes" {
				var obj dmeObject
				var leaves func(fs []kvField)
				leaves = func(fs []kvField) {
					for _, a := range fs {
						if a.has && a.Name != "" {
							if a.Name == "dn" {
								obj.dn, _ = a.value.(string)
							} else {
								obj.attrs = append(obj.attrs, dmeAttr{a.Name, a})
							}
						}
						leaves(a.Fields)
					}
				}
				leaves(f.Fields)
				if obj.dn != "" {
					out = append(out, obj)
				}
				continue
			}
			walk(f.Fields)
		}
	}
	walk(fs)
	return out
}

// protoObservations decodes one gNMI SubscribeResponse in protobuf JSON.
//
// A value that does not parse is an error, or with skip non-nil is handed
// to skip and left out.
func protoObservations(m json.RawMessage, device string, skip func(path string, err error)) ([]schema.Observation, error) {
	var resp gpb.SubscribeResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(m, &resp); err != nil {
		return nil, err
	}
	n := resp.GetUpdate()
	if n == nil {
		return nil, nil
	}
	ts := n.GetTimestamp()
	prefix := n.GetPrefix()
	if device == "" {
		device = prefix.GetTarget()
	}
	var out []schema.Observation
	for _, u := range n.GetUpdate() {
		elems := append(append([]*gpb.PathElem(nil), prefix.GetElem()...), u.GetPath().GetElem()...)
		origin := prefix.GetOrigin()
		if origin == "" {
			origin = u.GetPath().GetOrigin()
		}
		if len(elems) > 0 && origin == "" {
			// IOS-XE puts the module in the first element.
			if module, name := gnmipath.SplitModule(elems[0].GetName()); module != "" {
				origin = module
				elems[0] = &gpb.PathElem{Name: name, Key: elems[0].GetKey()}
			}
		}
		b, _ := gnmipath.AppendElems(nil, elems)
		base := string(b)
		var bad error
		_, err := gnmivalue.Decode(b, u.GetVal(), func(p []byte, o schema.Observation, ok bool) {
			if !ok {
				bad = fmt.Errorf("path %s: value cannot be represented", p)
				return
			}
			o.Device, o.Protocol, o.Origin, o.Path, o.DeviceTime, o.RecvTime = device, schema.ProtocolGNMI, origin, string(p), ts, ts
			out = append(out, o)
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			if skip == nil {
				return nil, fmt.Errorf("path %s: %w", base, err)
			}
			skip(base, err)
		}
	}
	return out, nil
}

// gnmicObservations decodes one gnmic JSON output object.
func gnmicObservations(m json.RawMessage, device string) ([]schema.Observation, error) {
	var msg struct {
		Source    string      `json:"source"`
		Timestamp json.Number `json:"timestamp"`
		Updates   []struct {
			Path   string         `json:"Path"`
			Values map[string]any `json:"values"`
		} `json:"updates"`
	}
	if err := decodeNumbers(m, &msg); err != nil {
		return nil, err
	}
	if device == "" {
		device = msg.Source
	}
	ts, _ := msg.Timestamp.Int64()
	var out []schema.Observation
	for _, u := range msg.Updates {
		origin, p := "", strings.TrimPrefix(u.Path, "/")
		// "rfc7951:Module:path" or "origin:path"; the module prefix on the
		// first element is kept for the normalizer to read.
		origin, p = gnmipath.SplitOrigin(p)
		if origin == "rfc7951" {
			if o, rest := gnmipath.SplitOrigin(p); o != "" {
				origin, p = o, rest
			}
		}
		var bad error
		for _, v := range u.Values {
			flattenJSON(p, v, func(path string, o schema.Observation) {
				o.Device, o.Protocol, o.Origin, o.Path, o.DeviceTime, o.RecvTime = device, schema.ProtocolGNMI, origin, path, ts, ts
				out = append(out, o)
			}, func(path string) { bad = fmt.Errorf("path %s: value cannot be represented", path) })
		}
		if bad != nil {
			return nil, bad
		}
	}
	return out, nil
}
