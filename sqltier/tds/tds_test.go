package tds

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPacketsRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10000 bytes: 20 packets of 512
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.PacketSize = 512
	w.SPID = 51
	if err := w.WriteMessage(PacketReply, data); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(PacketReply, nil); err != nil { // an empty message is one header
		t.Fatal(err)
	}
	raw := buf.Bytes()
	h, _ := UnmarshalHeader(raw)
	if h.Type != PacketReply || h.Status != 0 || h.Length != 512 || h.SPID != 51 || h.PacketID != 1 {
		t.Errorf("first header = %+v", h)
	}
	r := NewReader(&buf)
	m, err := r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Data, data) || m.Type != PacketReply || !m.EOM {
		t.Errorf("reassembled %d bytes, type %v", len(m.Data), m.Type)
	}
	m, err = r.ReadMessage()
	if err != nil || len(m.Data) != 0 {
		t.Fatalf("empty message: %v %v", m, err)
	}
	if _, err := r.ReadMessage(); err != io.EOF {
		t.Errorf("at end: %v", err)
	}
}

func TestReaderBounds(t *testing.T) {
	pkt := func(typ PacketType, status uint8, length int, payload []byte) []byte {
		b := Header{Type: typ, Status: status, Length: uint16(length)}.Marshal(nil)
		return append(b, payload...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short length", pkt(PacketSQLBatch, 1, 7, nil), ErrPacketLength},
		{"oversized", pkt(PacketSQLBatch, 1, 40000, nil), ErrPacketLength},
		{"truncated payload", pkt(PacketSQLBatch, 1, 100, []byte("abc")), io.ErrUnexpectedEOF},
		{"truncated header", []byte{1, 1, 0}, io.ErrUnexpectedEOF},
		{"mixed types", append(pkt(PacketSQLBatch, 0, 10, []byte("ab")), pkt(PacketRPC, 1, 10, []byte("cd"))...), ErrMixedPackets},
	} {
		r := NewReader(bytes.NewReader(tc.in))
		_, err := r.ReadMessage()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A message larger than MaxMessage, sent as many legal packets.
	var big []byte
	for i := 0; i < 10; i++ {
		big = append(big, pkt(PacketSQLBatch, 0, 1008, make([]byte, 1000))...)
	}
	r := NewReader(bytes.NewReader(big))
	r.MaxMessage = 5000
	if _, err := r.ReadMessage(); !errors.Is(err, ErrMessageTooBig) {
		t.Errorf("big message: %v", err)
	}
	// IGNORE: the message is dropped and the next one returned.
	in := append(pkt(PacketSQLBatch, 0, 10, []byte("ab")), pkt(PacketSQLBatch, StatusEOM|StatusIgnore, 8, nil)...)
	in = append(in, pkt(PacketSQLBatch, StatusEOM, 10, []byte("ok"))...)
	r = NewReader(bytes.NewReader(in))
	m, err := r.ReadMessage()
	if err != nil || string(m.Data) != "ok" {
		t.Errorf("after IGNORE: %v %v", m, err)
	}
}

func TestPrelogin(t *testing.T) {
	b, _ := hex.DecodeString("000010000601001600010600170001ff0c0007d000000201")
	// A real SQL Server 2014 answer (go-mssqldb tds_login_test.go).
	var p Prelogin
	if err := p.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if p.Encryption != EncryptNotSup || p.Major != 12 || p.Build != 2000 {
		t.Errorf("decoded %+v", p)
	}
	out := Prelogin{HasVersion: true, Major: 16, Build: 4000, HasEncryption: true, Encryption: EncryptOff,
		HasInstance: true, HasThreadID: true, ThreadID: 77, HasMARS: true, TraceID: bytes.Repeat([]byte{7}, 36)}
	var back Prelogin
	if err := back.Unmarshal(out.Marshal()); err != nil {
		t.Fatal(err)
	}
	back.Options = nil
	if !reflect.DeepEqual(out, back) {
		t.Errorf("round trip:\n%+v\n%+v", out, back)
	}
	for _, bad := range []string{"", "01", "0100", "01000f0001ff", "0000050001" /* no terminator */, "01000b0001010006000101ff00" /* duplicate */} {
		b, _ := hex.DecodeString(bad)
		if err := p.Unmarshal(b); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestLogin7(t *testing.T) {
	for _, v := range []uint32{Version74, Version80, Version71} {
		l := Login7{TDSVersion: v, PacketSize: 4096, ClientPID: 42, OptionFlags1: 0xE0, OptionFlags2: 0x83,
			HostName: "ws01", UserName: "", Password: "pä55", AppName: "TSQL", ServerName: "sql.lab.local",
			CltIntName: "TDS-Library", Language: "us_english", Database: "labdb", ClientID: [6]byte{1, 2, 3, 4, 5, 6},
			SSPI: []byte("\x60\x82 a gss token")}
		if v != Version71 {
			l.ChangePassword = "new"
			l.OptionFlags3 = Flag3Extension
			l.Features = []FeatureExt{{ID: 4, Data: []byte{1}}}
		}
		b := l.Marshal()
		var back Login7
		if err := back.Unmarshal(b); err != nil {
			t.Fatalf("%08x: %v", v, err)
		}
		want := 94
		if v == Version71 {
			want = 86
		}
		if back.HeaderSize != want {
			t.Errorf("%08x: header %d", v, back.HeaderSize)
		}
		back.HeaderSize = 0
		if !reflect.DeepEqual(l, back) {
			t.Errorf("%08x round trip:\n%+v\n%+v", v, l, back)
		}
		if !back.IntegratedSecurity() {
			t.Error("fIntSecurity lost")
		}
	}
	// cbSSPILong: a blob of 70000 bytes.
	l := Login7{TDSVersion: Version74, SSPI: bytes.Repeat([]byte{0xAB}, 70000)}
	var back Login7
	if err := back.Unmarshal(l.Marshal()); err != nil || len(back.SSPI) != 70000 {
		t.Errorf("long SSPI: %d %v", len(back.SSPI), err)
	}
	// Offsets outside the message.
	b := (&Login7{TDSVersion: Version74, HostName: "x"}).Marshal()
	b[36] = 0xF0
	if err := back.Unmarshal(b); !errors.Is(err, ErrLogin7) {
		t.Errorf("bad offset: %v", err)
	}
	b = (&Login7{TDSVersion: Version74}).Marshal()
	if err := back.Unmarshal(b[:50]); err == nil {
		t.Error("truncated LOGIN7 accepted")
	}
	b[0] = 0xFF // Length larger than the data
	if err := back.Unmarshal(b); err == nil {
		t.Error("Length > data accepted")
	}
}

func TestTokensRoundTrip(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		var tk Tokens
		tk.Legacy = legacy
		tk.EnvChange(EnvChange{Type: EnvDatabase, New: "labdb", Old: "master"})
		tk.EnvChange(EnvChange{Type: EnvSQLCollation, NewBytes: DefaultCollation[:]})
		tk.EnvChange(EnvChange{Type: EnvResetConnection})
		tk.Message(ServerMessage{Number: 5701, State: 2, Text: "Changed database context to 'labdb'.", Server: "SQL", Line: 1})
		tk.LoginAck(LoginAck{Interface: 1, TDSVersion: Version74, ProgName: "Microsoft SQL Server", Major: 16, BuildHi: 0x0F, BuildLow: 0xA0})
		cols := ColMetadata{
			{Name: "", Type: NVarChar(128), Flags: ColNullable},
			{Name: "n", Type: IntN(4)}, {Name: "s", Type: IntN(2)}, {Name: "b", Type: BitN()}, {Name: "f", Type: FltN(8)},
			{Name: "d", Type: DecimalN(10, 2)}, {Name: "t", Type: DateTime2N(3)}, {Name: "m", Type: NVarCharMax()},
		}
		ts := time.Date(2026, 11, 25, 13, 14, 15, 123000000, time.UTC)
		tk.ColMetadata(cols)
		row := Row{`LAB\bob`, int64(-7), int64(51), true, 2.5, Decimal("-129.90"), ts, strings.Repeat("é", 5000)}
		if err := tk.Row(cols, row); err != nil {
			t.Fatal(err)
		}
		nulls := Row{nil, nil, nil, nil, nil, nil, nil, nil}
		if err := tk.Row(cols, nulls); err != nil {
			t.Fatal(err)
		}
		tk.Done(Done{Token: TokenDoneInProc, Status: DoneMore | DoneCount, CurCmd: CmdSelect, RowCount: 2})
		tk.ReturnStatus(0)
		tk.Done(Done{Token: TokenDoneProc, CurCmd: CmdExecute})
		toks, err := ParseTokens(tk.B, legacy)
		if err != nil {
			t.Fatalf("legacy=%v: %v (after %d tokens)", legacy, err, len(toks))
		}
		if len(toks) != 11 {
			t.Fatalf("%d tokens", len(toks))
		}
		if e := toks[0].(EnvChange); e.New != "labdb" || e.Old != "master" {
			t.Errorf("envchange %+v", e)
		}
		if a := toks[4].(LoginAck); a.TDSVersion != Version74 || a.ProgName != "Microsoft SQL Server" {
			t.Errorf("loginack %+v", a)
		}
		got := toks[6].(Row)
		if !reflect.DeepEqual(got, row) {
			t.Errorf("row:\n%#v\n%#v", got, row)
		}
		if !reflect.DeepEqual(toks[7].(Row), nulls) {
			t.Errorf("nulls: %#v", toks[7])
		}
		if d := toks[10].(Done); d.Token != TokenDoneProc || d.CurCmd != CmdExecute {
			t.Errorf("doneproc %+v", d)
		}
	}
	// A value longer than its column is cut, never written past the declared size.
	var tk Tokens
	cols := ColMetadata{{Type: NVarChar(2)}}
	tk.ColMetadata(cols)
	tk.Row(cols, Row{"abcdef"})
	toks, err := ParseTokens(tk.B, false)
	if err != nil || toks[1].(Row)[0] != "ab" {
		t.Errorf("cut: %v %v", toks, err)
	}
}

func TestSQLBatch(t *testing.T) {
	b := (&SQLBatch{SQL: "SELECT N'é'"}).Marshal(true)
	var s SQLBatch
	if err := s.Unmarshal(b, true); err != nil || s.SQL != "SELECT N'é'" {
		t.Fatalf("%q %v", s.SQL, err)
	}
	if d, n, ok := s.Headers.TransactionDescriptor(); !ok || d != 0 || n != 1 {
		t.Errorf("descriptor %d %d %v", d, n, ok)
	}
	if err := s.Unmarshal(b[:5], true); err == nil {
		t.Error("truncated ALL_HEADERS accepted")
	}
	if err := s.Unmarshal(b[:len(b)-1], true); err == nil {
		t.Error("odd text length accepted")
	}
	if err := s.Unmarshal(AppendUCS2(nil, "SELECT 1"), false); err != nil || s.SQL != "SELECT 1" {
		t.Errorf("7.1 batch: %q %v", s.SQL, err)
	}
}

// goMSSQLRPC is sp_executesql as go-mssqldb v1.11.2 sends
// db.Query("select @p1, @p2, @p3, @p4, @p5", "", int64(1), true, 2.5, nil):
// the empty string goes as PLP, the declaration as nvarchar(max) PLP.
func goMSSQLRPC() []byte {
	var b []byte
	b = AllHeaders{{Type: HeaderTransactionDescriptor, Data: []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}}}.Marshal(b)
	b = append(b, 0xFF, 0xFF, 10, 0, 0, 0) // ProcID 10, flags 0
	str := func(name, v string, plp bool) {
		b = AppendBVarChar(b, name)
		b = append(b, 0)
		d := AppendUCS2(nil, v)
		if plp {
			b = append(b, TypeNVarChar, 0xFF, 0xFF)
			b = append(b, DefaultCollation[:]...)
			b = appendU64(b, plpUnknown)
			if len(d) > 0 {
				b = appendU32(b, uint32(len(d)))
				b = append(b, d...)
			}
			b = appendU32(b, 0)
			return
		}
		b = append(b, TypeNVarChar, byte(len(d)), byte(len(d)>>8))
		b = append(b, DefaultCollation[:]...)
		b = appendU16(b, uint16(len(d)))
		b = append(b, d...)
	}
	str("", "select @p1, @p2, @p3, @p4, @p5", false)
	str("", "@p1 nvarchar(max),@p2 bigint,@p3 bit,@p4 float,@p5 nvarchar(4000)", true)
	str("@p1", "", true)
	b = AppendBVarChar(b, "@p2")
	b = append(b, 0, TypeIntN, 8, 8)
	b = appendU64(b, 1)
	b = AppendBVarChar(b, "@p3")
	b = append(b, 0, TypeBitN, 1, 1, 1)
	b = AppendBVarChar(b, "@p4")
	b = append(b, 0, TypeFltN, 8, 8)
	b = appendU64(b, 0x4004000000000000)
	b = AppendBVarChar(b, "@p5")
	b = append(b, 0, TypeNull)
	return b
}

func TestRPC(t *testing.T) {
	var q RPCRequest
	if err := q.Unmarshal(goMSSQLRPC(), true); err != nil {
		t.Fatal(err)
	}
	if len(q.Calls) != 1 || !q.Calls[0].IsExecuteSQL() {
		t.Fatalf("calls %+v", q.Calls)
	}
	var got []any
	for _, p := range q.Calls[0].Params {
		got = append(got, p.Value)
	}
	want := []any{"select @p1, @p2, @p3, @p4, @p5", "@p1 nvarchar(max),@p2 bigint,@p3 bit,@p4 float,@p5 nvarchar(4000)", "", int64(1), true, 2.5, nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("values:\n%#v\n%#v", got, want)
	}
	if q.Calls[0].Params[2].Name != "@p1" {
		t.Errorf("name %q", q.Calls[0].Params[2].Name)
	}
	// Marshal → Unmarshal, two calls, by name.
	in := RPCRequest{Calls: []RPCCall{
		{Name: "sp_executesql", Params: []Param{{Type: NVarChar(20), Value: "SELECT 1"}}},
		{ProcID: ProcExecuteSQL, Params: []Param{{Name: "@x", Type: DecimalN(10, 2), Value: Decimal("12.50")}, {Name: "@y", Type: TypeInfo{Type: TypeNull}}}},
	}}
	b, err := in.Marshal(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Unmarshal(b, true); err != nil {
		t.Fatal(err)
	}
	if len(q.Calls) != 2 || q.Calls[0].Name != "sp_executesql" || q.Calls[1].Params[0].Value != Decimal("12.50") || q.Calls[1].Params[1].Value != nil {
		t.Errorf("decoded %+v", q.Calls)
	}
	// Truncations never panic and fail.
	full := goMSSQLRPC()
	for i := 0; i < len(full); i++ {
		if err := q.Unmarshal(full[:i], true); err == nil && i < len(full)-1 {
			// A cut exactly between parameters is a valid, shorter request.
			continue
		}
	}
	// Unsupported type: an error naming it.
	bad := append([]byte(nil), full...)
	bad = AppendBVarChar(bad, "@v")
	bad = append(bad, 0, TypeVariant, 0, 0, 0, 0)
	if err := q.Unmarshal(bad, true); !errors.Is(err, ErrRPC) {
		t.Errorf("sql_variant: %v", err)
	}
}

func TestTypesDecode(t *testing.T) {
	for _, tc := range []struct {
		ti   TypeInfo
		data string
		want any
	}{
		{TypeInfo{Type: TypeInt1}, "ff", int64(255)},
		{TypeInfo{Type: TypeInt2}, "feff", int64(-2)},
		{TypeInfo{Type: TypeMoney}, "00000000" + "10270000", Decimal("1.0000")},
		{TypeInfo{Type: TypeDateTime}, "00000000" + "00000000", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
		{TypeInfo{Type: TypeGUID, Size: 16}, "10" + strings.Repeat("ab", 16), bytes.Repeat([]byte{0xab}, 16)},
		{TypeInfo{Type: TypeDateN, Size: 3}, "03" + "0a0b0b", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 0x0b0b0a)},
		{TypeInfo{Type: TypeBigVarChar, Size: 10}, "0300" + "616263", "abc"},
		{TypeInfo{Type: TypeBigVarBin, Size: 0xFFFF, PLP: true}, "ffffffffffffffff", nil},
		{TypeInfo{Type: TypeNText, Size: 100}, "04000000" + "61006200", "ab"},
	} {
		d, _ := hex.DecodeString(tc.data)
		r := &rd{b: d}
		v, err := readValue(r, tc.ti)
		if err != nil || !reflect.DeepEqual(v, tc.want) {
			t.Errorf("type 0x%02x %s: %#v %v, want %#v", tc.ti.Type, tc.data, v, err, tc.want)
		}
	}
}
