package sinks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
)

const (
	stAzureTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	stAzureClient = "0b1c2d3e-client"
	stAzureSecret = "azure~client~secret~value"
	stAzureDCR    = "dcr-00112233445566778899aabbccddeeff"
	stAzureStream = "Custom-GatehouseAudit"
)

// stAzure is Entra ID's token endpoint and the Logs Ingestion API on one
// TLS server: tokens are issued for the client credentials, and ingestion
// checks the bearer token, path, api-version and body (a JSON array of
// at most 1 MiB).
type stAzure struct {
	t *testing.T
	// ingestAnswer, when set, overrides the answer to ingestion call n.
	ingestAnswer func(n int) int
	// tokenStatus, when set, is the token endpoint's answer.
	tokenStatus int

	mu      sync.Mutex
	tokens  int // issued
	ingests int // calls
	rows    []map[string]any
	sizes   []int
	revoked map[string]bool
}

func (a *stAzure) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.URL.Path == "/"+stAzureTenant+"/oauth2/v2.0/token" {
		a.token(w, r)
		return
	}
	a.ingests++
	n := a.ingests
	wantPath := "/dataCollectionRules/" + stAzureDCR + "/streams/" + stAzureStream
	if r.Method != http.MethodPost || r.URL.Path != wantPath {
		http.Error(w, `{"error":{"code":"NotFound"}}`, http.StatusNotFound)
		return
	}
	if got := r.URL.Query().Get("api-version"); got != "2023-01-01" {
		http.Error(w, `{"error":{"code":"InvalidApiVersion"}}`, http.StatusBadRequest)
		return
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || !strings.HasPrefix(tok, "access-") || a.revoked[tok] {
		http.Error(w, `{"error":{"code":"InvalidToken"}}`, http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"error":{"code":"UnsupportedMediaType"}}`, http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 1<<20 {
		http.Error(w, `{"error":{"code":"ContentLengthLimitExceeded"}}`, http.StatusRequestEntityTooLarge)
		return
	}
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); err != nil || len(rows) == 0 {
		http.Error(w, `{"error":{"code":"InvalidJson"}}`, http.StatusBadRequest)
		return
	}
	if a.ingestAnswer != nil {
		if st := a.ingestAnswer(n); st != 0 {
			if st == http.StatusUnauthorized {
				a.revoked[tok] = true
			}
			http.Error(w, `{"error":{"code":"Injected"}}`, st)
			return
		}
	}
	a.sizes = append(a.sizes, len(body))
	a.rows = append(a.rows, rows...)
	w.WriteHeader(http.StatusNoContent)
}

func (a *stAzure) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if a.tokenStatus != 0 || f.Get("grant_type") != "client_credentials" || f.Get("client_id") != stAzureClient ||
		f.Get("client_secret") != stAzureSecret || f.Get("scope") != "https://monitor.azure.com//.default" {
		st := a.tokenStatus
		if st == 0 {
			st = http.StatusUnauthorized
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		io.WriteString(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
		return
	}
	a.tokens++
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"access-%d"}`, a.tokens)
}

func (a *stAzure) state() (tokens, ingests int, rows []map[string]any, sizes []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokens, a.ingests, append([]map[string]any(nil), a.rows...), append([]int(nil), a.sizes...)
}

func newSTAzure(t *testing.T) (*stAzure, *httptest.Server, string) {
	a := &stAzure{t: t, revoked: map[string]bool{}}
	srv := httptest.NewTLSServer(a)
	t.Cleanup(srv.Close)
	return a, srv, stWritePEM(t, srv.Certificate().Raw)
}

func stAzureConfig(srv *httptest.Server, caFile string) sinks.AzureConfig {
	return sinks.AzureConfig{
		Endpoint:       srv.URL,
		DCRImmutableID: stAzureDCR,
		StreamName:     stAzureStream,
		TenantID:       stAzureTenant,
		ClientID:       stAzureClient,
		ClientSecret:   config.Secret(stAzureSecret),
		TokenURL:       srv.URL + "/" + stAzureTenant + "/oauth2/v2.0/token",
		CAFile:         caFile,
		Timeout:        5 * time.Second,
	}
}

func newSTAzureSink(t *testing.T, cfg sinks.AzureConfig) *sinks.AzureMonitor {
	t.Helper()
	s, err := sinks.NewAzure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAzureIngestion(t *testing.T) {
	a, srv, ca := newSTAzure(t)
	s := newSTAzureSink(t, stAzureConfig(srv, ca))
	recs := stRecords(5)
	ctx := context.Background()
	if err := s.Send(ctx, recs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, recs[2:]); err != nil {
		t.Fatal(err)
	}
	tokens, ingests, rows, _ := a.state()
	if tokens != 1 || ingests != 2 {
		t.Errorf("%d tokens, %d calls; want the token reused over 2 calls", tokens, ingests)
	}
	if len(rows) != len(recs) {
		t.Fatalf("%d rows", len(rows))
	}
	for i, row := range rows {
		r := recs[i]
		for col, want := range map[string]any{
			"TimeGenerated":            r.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			"time":                     float64(r.Time.UnixMilli()),
			"class_uid":                6003.0,
			"activity_id":              99.0,
			"metadata_uid":             r.ID,
			"metadata_sequence":        float64(r.Seq),
			"metadata_version":         "1.3.0",
			"metadata_product_name":    "Gatehouse",
			"actor_user_uid":           "agent:agt_7",
			"actor_user_name":          "triage-bot",
			"actor_session_uid":        "ses_1",
			"src_endpoint_ip":          "192.0.2.10",
			"api_operation":            "tools/call",
			"api_request_uid":          r.Context.RequestID,
			"api_service_name":         "github",
			"status":                   []string{"Success", "Failure"}[min(i%5, 1)],
			"unmapped_outcome_rule":    "org.deny-prod",
			"unmapped_hash":            r.Hash,
			"unmapped_prev_hash":       r.PrevHash,
			"unmapped_duration_ms":     12.625,
			"unmapped_bytes_out":       321.0,
			"unmapped_ai_model":        "claude-opus-4",
			"unmapped_ai_tool":         r.Target.Tool,
			"unmapped_target_upstream": "gh-prod",
		} {
			if i%5 == 3 && col == "status" { // would_deny is a success
				want = "Success"
			}
			if got := row[col]; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("row %d: %s = %v, want %v", i, col, got, want)
			}
		}
		// Lists and request data stay JSON values (dynamic columns).
		if res, ok := row["resources"].([]any); !ok || len(res) != 1 {
			t.Errorf("row %d: resources = %#v", i, row["resources"])
		}
		if d, ok := row["api_request_data"].(map[string]any); !ok || d["title"] != "<b>x</b> & y" {
			t.Errorf("row %d: api_request_data = %#v", i, row["api_request_data"])
		}
		for col := range row {
			if strings.ContainsAny(col, ". ") {
				t.Errorf("row %d: column %q is not flattened", i, col)
			}
		}
	}
}

func TestAzureSplitsAboveLimit(t *testing.T) {
	a, srv, ca := newSTAzure(t)
	cfg := stAzureConfig(srv, ca)
	recs := stRecords(30)
	// Big arguments: about 100 KB a row, 30 rows, well above 1 MiB.
	big := `{"blob":"` + strings.Repeat("z", 100_000) + `"}`
	for i := range recs {
		recs[i].Args = json.RawMessage(big)
	}
	s := newSTAzureSink(t, cfg)
	if err := s.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	_, ingests, rows, sizes := a.state()
	if ingests < 3 {
		t.Errorf("%d calls for ~3 MB", ingests)
	}
	for _, n := range sizes {
		if n > 1<<20 {
			t.Errorf("a call of %d bytes", n)
		}
	}
	if len(rows) != len(recs) {
		t.Fatalf("%d rows", len(rows))
	}
	for i, row := range rows {
		if row["metadata_uid"] != recs[i].ID {
			t.Errorf("row %d is %v, want %s (order)", i, row["metadata_uid"], recs[i].ID)
		}
	}

	// A single row above the limit loses its request data, not the row.
	recs[0].Args = json.RawMessage(`{"blob":"` + strings.Repeat("z", 2<<20) + `"}`)
	if err := s.Send(context.Background(), recs[:1]); err != nil {
		t.Fatal(err)
	}
	_, _, rows, _ = a.state()
	last := rows[len(rows)-1]
	if d, ok := last["api_request_data"].(string); !ok || !strings.Contains(d, "left out") {
		t.Errorf("oversized row: api_request_data = %.80v", last["api_request_data"])
	}

	// A smaller configured limit splits more.
	cfg.MaxBodyBytes = 250_000
	s2 := newSTAzureSink(t, cfg)
	_, before, _, _ := a.state()
	if err := s2.Send(context.Background(), recs[1:11]); err != nil {
		t.Fatal(err)
	}
	_, after, _, sizes := a.state()
	if after-before < 5 {
		t.Errorf("%d calls for 10 rows of 100 KB at 250 KB a call", after-before)
	}
	for _, n := range sizes[len(sizes)-(after-before):] {
		if n > 250_000 {
			t.Errorf("a call of %d bytes above max_body_bytes", n)
		}
	}
}

// Failures fail the Send (the batch is resent); a 401 drops the cached
// token so the resend gets a new one.
func TestAzureRetrySemantics(t *testing.T) {
	a, srv, ca := newSTAzure(t)
	a.ingestAnswer = func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return http.StatusTooManyRequests
		case 3:
			return http.StatusUnauthorized
		}
		return 0
	}
	s := newSTAzureSink(t, stAzureConfig(srv, ca))
	recs := stRecords(3)
	var errs []string
	for {
		err := s.Send(context.Background(), recs)
		if err == nil {
			break
		}
		errs = append(errs, err.Error())
		if len(errs) > 5 {
			t.Fatal(errs)
		}
	}
	want := []string{"status 503 (server error)", "status 429 (throttled)", "status 401 (client error"}
	if len(errs) != len(want) {
		t.Fatalf("errors %q", errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %q does not contain %q", errs[i], w)
		}
		if strings.Contains(errs[i], stAzureSecret) || strings.Contains(errs[i], "access-") {
			t.Errorf("error %q reveals a secret", errs[i])
		}
	}
	tokens, _, rows, _ := a.state()
	if tokens != 2 {
		t.Errorf("%d tokens, want a new one after the 401", tokens)
	}
	if len(rows) != len(recs) {
		t.Errorf("%d rows", len(rows))
	}
}

func TestAzureTokenFailure(t *testing.T) {
	a, srv, ca := newSTAzure(t)
	cfg := stAzureConfig(srv, ca)
	cfg.ClientSecret = "wrong~secret~value"
	s := newSTAzureSink(t, cfg)
	err := s.Send(context.Background(), stRecords(1))
	if err == nil {
		t.Fatal("Send with a wrong client secret succeeded")
	}
	for _, w := range []string{"getting a token", "401", "invalid_client", "AADSTS7000215"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "wrong~secret") || strings.Contains(err.Error(), stAzureSecret) {
		t.Errorf("error %q reveals the secret", err)
	}
	if _, ingests, _, _ := a.state(); ingests != 0 {
		t.Errorf("%d ingestion calls without a token", ingests)
	}
}

func TestAzureEmptyBatchAndDownReceiver(t *testing.T) {
	a, srv, ca := newSTAzure(t)
	s := newSTAzureSink(t, stAzureConfig(srv, ca))
	if err := s.Send(context.Background(), []audit.Record{}); err != nil {
		t.Fatal(err)
	}
	if tokens, ingests, _, _ := a.state(); tokens+ingests != 0 {
		t.Errorf("empty batch: %d token and %d ingestion calls", tokens, ingests)
	}
	srv.Close()
	start := time.Now()
	if err := s.Send(context.Background(), stRecords(1)); err == nil {
		t.Error("Send to a closed endpoint succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v", d)
	}
}

func TestAzureUntrustedCertificate(t *testing.T) {
	_, srv, _ := newSTAzure(t)
	cfg := stAzureConfig(srv, newSTCert(t).CAFile) // another CA
	s := newSTAzureSink(t, cfg)
	err := s.Send(context.Background(), stRecords(1))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %v, want a certificate error", err)
	}
}

func TestAzureConfigErrors(t *testing.T) {
	ok := sinks.AzureConfig{
		Endpoint: "https://dce.westeurope-1.ingest.monitor.azure.com", DCRImmutableID: stAzureDCR, StreamName: stAzureStream,
		TenantID: stAzureTenant, ClientID: stAzureClient, ClientSecret: stAzureSecret,
	}
	if _, err := sinks.NewAzure(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*sinks.AzureConfig)
		want string
	}{
		{"no endpoint", func(c *sinks.AzureConfig) { c.Endpoint = "" }, "endpoint is required"},
		{"http endpoint", func(c *sinks.AzureConfig) { c.Endpoint = "http://dce.example.com" }, "endpoint must be an https URL"},
		{"no dcr", func(c *sinks.AzureConfig) { c.DCRImmutableID = "" }, "dcr_immutable_id is required"},
		{"dcr with slash", func(c *sinks.AzureConfig) { c.DCRImmutableID = "dcr-1/x" }, "dcr_immutable_id"},
		{"no stream", func(c *sinks.AzureConfig) { c.StreamName = "" }, "stream_name is required"},
		{"no tenant", func(c *sinks.AzureConfig) { c.TenantID = "" }, "tenant_id is required"},
		{"no client", func(c *sinks.AzureConfig) { c.ClientID = "" }, "client_id is required"},
		{"no secret", func(c *sinks.AzureConfig) { c.ClientSecret = "" }, "client_secret is required"},
		{"http token url", func(c *sinks.AzureConfig) { c.TokenURL = "http://login.example.com/t" }, "token_url must be an https URL"},
		{"body too large", func(c *sinks.AzureConfig) { c.MaxBodyBytes = 2 << 20 }, "max_body_bytes"},
		{"negative timeout", func(c *sinks.AzureConfig) { c.Timeout = -1 }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := sinks.NewAzure(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `audit sink "azure" (azure)`) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), stAzureSecret) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}
