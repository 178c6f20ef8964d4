package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Customer is a CRM account contact.
type Customer struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Company        string   `json:"company"`
	Email          string   `json:"email"`
	Phone          string   `json:"phone"`
	Tier           string   `json:"tier" jsonschema:"starter, business or enterprise"`
	Region         string   `json:"region" jsonschema:"NA, LATAM, EMEA or APAC"`
	AccountManager string   `json:"account_manager"`
	InvoiceIDs     []string `json:"invoice_ids,omitempty"`
}

// Invoice is a billing record. It carries the full payment card number and
// billing email on purpose: DLP demos need sensitive data to detect.
type Invoice struct {
	ID           string      `json:"id"`
	CustomerID   string      `json:"customer_id"`
	Company      string      `json:"company"`
	Status       string      `json:"status" jsonschema:"paid, open or overdue"`
	IssuedOn     string      `json:"issued_on" jsonschema:"issue date (YYYY-MM-DD)"`
	DueOn        string      `json:"due_on" jsonschema:"due date (YYYY-MM-DD)"`
	Currency     string      `json:"currency"`
	Total        string      `json:"total" jsonschema:"decimal amount in currency units"`
	BillingEmail string      `json:"billing_email"`
	Payment      PaymentCard `json:"payment"`
	LineItems    []LineItem  `json:"line_items"`
}

// PaymentCard is the card an invoice was charged to.
type PaymentCard struct {
	Brand  string `json:"brand"`
	Number string `json:"number"`
	Holder string `json:"holder"`
	Expiry string `json:"expiry" jsonschema:"MM/YY"`
}

// LineItem is one billed line on an invoice.
type LineItem struct {
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   string `json:"unit_price"`
	Amount      string `json:"amount"`
}

// crm holds the CRM demo data. It is read-only after construction, so it
// needs no lock.
type crm struct {
	customers []Customer
	invoices  []Invoice
}

const (
	crmCustomersURI        = "crm://customers"
	crmCustomerTemplateURI = "crm://customers/{id}"
	crmCustomerURIPrefix   = "crm://customers/"
	summarizePrompt        = "summarize_account"
	searchDefaultLimit     = 5
	searchMaxLimit         = 50
)

func newCRM() *crm {
	c := &crm{customers: seedCustomers(), invoices: seedInvoices()}
	for i := range c.invoices {
		inv := &c.invoices[i]
		cu := c.customer(inv.CustomerID)
		if cu == nil {
			panic(fmt.Sprintf("demo: invoice %s references unknown customer %s", inv.ID, inv.CustomerID))
		}
		// Derive the company name and the customer's invoice list from one
		// source so the seed data cannot drift, and so get_customer shows
		// what to fetch next without a separate "list invoices" tool.
		inv.Company = cu.Company
		cu.InvoiceIDs = append(cu.InvoiceIDs, inv.ID)
	}
	return c
}

func (*crm) title() string { return "Gatehouse demo CRM" }

func (*crm) instructions() string {
	return "Demo CRM for Gatehouse. Look customers up with search_customers, then get_customer " +
		"for details and invoice ids, and get_invoice for billing records. All data is fictional."
}

func (c *crm) customer(id string) *Customer {
	id = normID(id)
	for i := range c.customers {
		if c.customers[i].ID == id {
			return &c.customers[i]
		}
	}
	return nil
}

func (c *crm) invoice(id string) *Invoice {
	id = normID(id)
	for i := range c.invoices {
		if c.invoices[i].ID == id {
			return &c.invoices[i]
		}
	}
	return nil
}

// SearchCustomersInput is the input of search_customers.
type SearchCustomersInput struct {
	Query string `json:"query" jsonschema:"words to match against id, name, company, email, tier, region or account manager; every word must match; empty matches all"`
	Limit int    `json:"limit,omitempty" jsonschema:"maximum number of customers to return (default 5, max 50)"`
}

// SearchCustomersOutput is the structured result of search_customers.
type SearchCustomersOutput struct {
	Customers []Customer `json:"customers"`
	Total     int        `json:"total" jsonschema:"number of matches before the limit was applied"`
}

// IDInput is the input of tools that fetch one record by id.
type IDInput struct {
	ID string `json:"id" jsonschema:"the record id"`
}

func (c *crm) register(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{
		Name:        "search_customers",
		Title:       "Search customers",
		Description: "Search CRM customers by free text (name, company, email, tier, region, account manager or id). Returns matching customers with contact details.",
		Annotations: readOnly("Search customers"),
	}, c.searchCustomers)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_customer",
		Title:       "Get customer",
		Description: "Fetch one CRM customer by id (e.g. CUST-1001), including contact details, tier, region, account manager and invoice ids.",
		Annotations: readOnly("Get customer"),
	}, c.getCustomer)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "get_invoice",
		Title:       "Get invoice",
		Description: "Fetch one invoice by id (e.g. INV-24001), including line items, billing email and the payment card used.",
		Annotations: readOnly("Get invoice"),
	}, c.getInvoice)

	s.AddResource(&mcp.Resource{
		URI:         crmCustomersURI,
		Name:        "customers",
		Title:       "All customers",
		Description: "Every CRM customer as a JSON array.",
		MIMEType:    "application/json",
	}, c.readCustomers)
	s.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: crmCustomerTemplateURI,
		Name:        "customer",
		Title:       "Customer by id",
		Description: "One CRM customer as a JSON object.",
		MIMEType:    "application/json",
	}, c.readCustomer)

	s.AddPrompt(&mcp.Prompt{
		Name:        summarizePrompt,
		Title:       "Summarize account",
		Description: "Ask the model for an account summary of one customer: who they are, billing health and suggested next steps.",
		Arguments: []*mcp.PromptArgument{{
			Name:        "customer_id",
			Title:       "Customer id",
			Description: "CRM customer id, e.g. CUST-1001",
			Required:    true,
		}},
	}, c.summarizeAccount)
}

func (c *crm) searchCustomers(_ context.Context, _ *mcp.CallToolRequest, in SearchCustomersInput) (*mcp.CallToolResult, SearchCustomersOutput, error) {
	limit := in.Limit
	switch {
	case limit < 0:
		return nil, SearchCustomersOutput{}, fmt.Errorf("limit must not be negative, got %d", limit)
	case limit == 0:
		limit = searchDefaultLimit
	case limit > searchMaxLimit:
		limit = searchMaxLimit
	}
	terms := strings.Fields(strings.ToLower(in.Query))
	out := SearchCustomersOutput{Customers: []Customer{}}
	for _, cu := range c.customers {
		hay := strings.ToLower(strings.Join([]string{cu.ID, cu.Name, cu.Company, cu.Email, cu.Tier, cu.Region, cu.AccountManager}, " "))
		if !containsAll(hay, terms) {
			continue
		}
		out.Total++
		if len(out.Customers) < limit {
			out.Customers = append(out.Customers, cu)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%d customer(s) match %q", out.Total, in.Query)
	if out.Total > len(out.Customers) {
		fmt.Fprintf(&b, " (showing first %d)", len(out.Customers))
	}
	b.WriteString(":\n")
	for _, cu := range out.Customers {
		fmt.Fprintf(&b, "- %s  %s, %s <%s> (%s, %s)\n", cu.ID, cu.Name, cu.Company, cu.Email, cu.Tier, cu.Region)
	}
	return textResult("%s", strings.TrimRight(b.String(), "\n")), out, nil
}

func containsAll(hay string, terms []string) bool {
	for _, t := range terms {
		if !strings.Contains(hay, t) {
			return false
		}
	}
	return true
}

func (c *crm) getCustomer(_ context.Context, _ *mcp.CallToolRequest, in IDInput) (*mcp.CallToolResult, *Customer, error) {
	cu := c.customer(in.ID)
	if cu == nil {
		return nil, nil, fmt.Errorf("customer %q not found; ids look like CUST-1001 (try search_customers)", in.ID)
	}
	return textResult("%s", formatCustomer(cu)), cu, nil
}

func formatCustomer(cu *Customer) string {
	invoices := "none"
	if len(cu.InvoiceIDs) > 0 {
		invoices = strings.Join(cu.InvoiceIDs, ", ")
	}
	return fmt.Sprintf("%s — %s, %s\nEmail: %s\nPhone: %s\nTier: %s\nRegion: %s\nAccount manager: %s\nInvoices: %s",
		cu.ID, cu.Name, cu.Company, cu.Email, cu.Phone, cu.Tier, cu.Region, cu.AccountManager, invoices)
}

func (c *crm) getInvoice(_ context.Context, _ *mcp.CallToolRequest, in IDInput) (*mcp.CallToolResult, *Invoice, error) {
	inv := c.invoice(in.ID)
	if inv == nil {
		return nil, nil, fmt.Errorf("invoice %q not found; ids look like INV-24001 (get_customer lists a customer's invoices)", in.ID)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Invoice %s for %s (%s)\n", inv.ID, inv.Company, inv.CustomerID)
	fmt.Fprintf(&b, "Status: %s, issued %s, due %s\n", inv.Status, inv.IssuedOn, inv.DueOn)
	fmt.Fprintf(&b, "Total: %s %s\n", inv.Currency, inv.Total)
	fmt.Fprintf(&b, "Billing email: %s\n", inv.BillingEmail)
	fmt.Fprintf(&b, "Paid with: %s %s (exp %s, %s)\n", inv.Payment.Brand, inv.Payment.Number, inv.Payment.Expiry, inv.Payment.Holder)
	b.WriteString("Line items:")
	for _, li := range inv.LineItems {
		fmt.Fprintf(&b, "\n- %d x %s @ %s = %s", li.Quantity, li.Description, li.UnitPrice, li.Amount)
	}
	return textResult("%s", b.String()), inv, nil
}

func (c *crm) readCustomers(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	data, err := json.MarshalIndent(c.customers, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding customers: %w", err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI: req.Params.URI, MIMEType: "application/json", Text: string(data),
	}}}, nil
}

func (c *crm) readCustomer(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	cu := c.customer(strings.TrimPrefix(uri, crmCustomerURIPrefix))
	if cu == nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	data, err := json.MarshalIndent(cu, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding customer %s: %w", cu.ID, err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
		URI: uri, MIMEType: "application/json", Text: string(data),
	}}}, nil
}

func (c *crm) summarizeAccount(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	id := req.Params.Arguments["customer_id"]
	cu := c.customer(id)
	if cu == nil {
		return nil, fmt.Errorf("%s: customer %q not found", summarizePrompt, id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Summarize the account below for %s, its account manager. Cover who the customer is, "+
		"billing health (flag anything overdue) and two or three concrete next steps. Keep it under 150 words "+
		"and do not repeat payment card numbers.\n\n%s\n\nInvoices:", cu.AccountManager, formatCustomer(cu))
	for _, id := range cu.InvoiceIDs {
		inv := c.invoice(id)
		fmt.Fprintf(&b, "\n- %s: %s %s, %s (due %s)", inv.ID, inv.Currency, inv.Total, inv.Status, inv.DueOn)
	}
	if len(cu.InvoiceIDs) == 0 {
		b.WriteString(" none")
	}
	return &mcp.GetPromptResult{
		Description: fmt.Sprintf("Account summary for %s (%s)", cu.Company, cu.ID),
		Messages: []*mcp.PromptMessage{{
			Role:    "user",
			Content: &mcp.TextContent{Text: b.String()},
		}},
	}, nil
}

// complete offers customer ids for the summarize_account prompt argument and
// the crm://customers/{id} template variable. A value matches an id by
// prefix, or a customer's name or company by substring, so "acme" completes
// to Acme's id.
func (c *crm) complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	ref, arg := req.Params.Ref, req.Params.Argument
	wanted := (ref.Type == "ref/prompt" && ref.Name == summarizePrompt && arg.Name == "customer_id") ||
		(ref.Type == "ref/resource" && ref.URI == crmCustomerTemplateURI && arg.Name == "id")
	values := []string{}
	if wanted {
		v := strings.ToLower(strings.TrimSpace(arg.Value))
		for _, cu := range c.customers {
			if strings.HasPrefix(strings.ToLower(cu.ID), v) ||
				strings.Contains(strings.ToLower(cu.Name), v) ||
				strings.Contains(strings.ToLower(cu.Company), v) {
				values = append(values, cu.ID)
			}
		}
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{
		Values: values,
		Total:  len(values),
	}}, nil
}

func seedCustomers() []Customer {
	return []Customer{
		{ID: "CUST-1001", Name: "Priya Raman", Company: "Acme Logistics", Email: "priya.raman@acmelogistics.example", Phone: "+1 415 555 0142", Tier: "enterprise", Region: "NA", AccountManager: "Dana Whitfield"},
		{ID: "CUST-1002", Name: "Tomás Herrera", Company: "Northwind Traders", Email: "tomas.herrera@northwind.example", Phone: "+34 910 555 187", Tier: "enterprise", Region: "EMEA", AccountManager: "Elena Petrova"},
		{ID: "CUST-1003", Name: "Mei Lin Chen", Company: "Harbor & Pine Analytics", Email: "meilin.chen@harborpine.example", Phone: "+61 2 5550 1234", Tier: "business", Region: "APAC", AccountManager: "Aiko Tanaka"},
		{ID: "CUST-1004", Name: "Olusegun Adeyemi", Company: "Brightwater Health", Email: "o.adeyemi@brightwaterhealth.example", Phone: "+44 20 7946 0311", Tier: "enterprise", Region: "EMEA", AccountManager: "Elena Petrova"},
		{ID: "CUST-1005", Name: "Sophie Laurent", Company: "Maison Verte Retail", Email: "sophie.laurent@maisonverte.example", Phone: "+33 1 99 00 12 34", Tier: "business", Region: "EMEA", AccountManager: "Marcus Bell"},
		{ID: "CUST-1006", Name: "Jack O'Donnell", Company: "Copperline Manufacturing", Email: "jack.odonnell@copperline.example", Phone: "+1 312 555 0199", Tier: "starter", Region: "NA", AccountManager: "Dana Whitfield"},
		{ID: "CUST-1007", Name: "Ana Beatriz Souza", Company: "Vento Sul Energia", Email: "ana.souza@ventosul.example", Phone: "+55 11 5555 0123", Tier: "business", Region: "LATAM", AccountManager: "Marcus Bell"},
		{ID: "CUST-1008", Name: "Kenji Watanabe", Company: "Kitsune Robotics", Email: "kenji.watanabe@kitsune-robotics.example", Phone: "+81 3 5555 0148", Tier: "enterprise", Region: "APAC", AccountManager: "Aiko Tanaka"},
		{ID: "CUST-1009", Name: "Rachel Goldberg", Company: "Lumen Legal LLP", Email: "rgoldberg@lumenlegal.example", Phone: "+1 212 555 0176", Tier: "business", Region: "NA", AccountManager: "Dana Whitfield"},
		{ID: "CUST-1010", Name: "Lars Eriksson", Company: "Fjordline Shipping", Email: "lars.eriksson@fjordline.example", Phone: "+47 555 01 234", Tier: "starter", Region: "EMEA", AccountManager: "Elena Petrova"},
	}
}

// seedInvoices returns the invoice data. Card numbers are well-known,
// Luhn-valid test numbers from the Visa (4), Mastercard (5), Amex (34/37) and
// Discover (6011) ranges, in both spaced and plain formats, so DLP detectors
// have to cope with both.
func seedInvoices() []Invoice {
	return []Invoice{
		newInvoice("INV-24001", "CUST-1001", "paid", "2024-01-15", "2024-02-14", "ap@acmelogistics.example",
			PaymentCard{"Visa", "4111 1111 1111 1111", "Priya Raman", "09/27"},
			item("Fleet tracking seat", 40, 12000), item("Premium support (monthly)", 1, 250000)),
		newInvoice("INV-24002", "CUST-1002", "open", "2024-03-01", "2024-03-31", "accounts.payable@northwind.example",
			PaymentCard{"Mastercard", "5555555555554444", "Northwind Traders Ltd", "04/26"},
			item("Warehouse API calls (per 10k)", 85, 4000), item("EDI connector", 2, 95000)),
		newInvoice("INV-24003", "CUST-1003", "paid", "2024-02-10", "2024-03-11", "finance@harborpine.example",
			PaymentCard{"American Express", "3782 822463 10005", "Mei Lin Chen", "11/26"},
			item("Analytics workspace", 12, 8900)),
		newInvoice("INV-24004", "CUST-1004", "overdue", "2024-01-05", "2024-02-04", "billing@brightwaterhealth.example",
			PaymentCard{"Visa", "4012888888881881", "Brightwater Health NHS Trust", "02/25"},
			item("Clinical messaging seat", 150, 6500), item("HIPAA/GDPR compliance pack", 1, 180000)),
		newInvoice("INV-24005", "CUST-1005", "paid", "2024-02-20", "2024-03-21", "compta@maisonverte.example",
			PaymentCard{"Mastercard", "5105 1051 0510 5100", "Sophie Laurent", "07/27"},
			item("Storefront connector", 3, 45000), item("Onboarding workshop", 1, 120000)),
		newInvoice("INV-24006", "CUST-1006", "open", "2024-03-12", "2024-04-11", "jack.odonnell@copperline.example",
			PaymentCard{"American Express", "371449635398431", "Jack O'Donnell", "05/28"},
			item("Starter plan (annual)", 1, 99000)),
		newInvoice("INV-24007", "CUST-1007", "overdue", "2023-12-01", "2023-12-31", "financeiro@ventosul.example",
			PaymentCard{"Visa", "4000 0566 5566 5556", "Vento Sul Energia S.A.", "10/26"},
			item("Field ops seat", 25, 7500), item("SMS alerts bundle", 4, 15000)),
		newInvoice("INV-24008", "CUST-1008", "paid", "2024-02-01", "2024-03-02", "keiri@kitsune-robotics.example",
			PaymentCard{"Mastercard", "5200828282828210", "Kenji Watanabe", "12/26"},
			item("Robotics telemetry seat", 60, 11000), item("Dedicated support engineer", 1, 400000)),
		newInvoice("INV-24009", "CUST-1009", "open", "2024-03-05", "2024-04-04", "billing@lumenlegal.example",
			PaymentCard{"Discover", "6011 1111 1111 1117", "Rachel Goldberg", "03/27"},
			item("Matter management seat", 18, 9500)),
		newInvoice("INV-24010", "CUST-1001", "open", "2024-03-15", "2024-04-14", "ap@acmelogistics.example",
			PaymentCard{"Visa", "4242424242424242", "Acme Logistics Inc", "09/27"},
			item("Fleet tracking seat", 45, 12000), item("Route optimisation add-on", 1, 300000)),
		newInvoice("INV-24011", "CUST-1010", "paid", "2024-01-25", "2024-02-24", "faktura@fjordline.example",
			PaymentCard{"American Express", "3787 344936 71000", "Lars Eriksson", "08/26"},
			item("Starter plan (annual)", 1, 99000), item("Extra vessel tracker", 6, 4500)),
	}
}

// lineSeed is a line item before formatting; prices are in minor units
// (cents) so totals are computed exactly rather than typed in and left to
// drift.
type lineSeed struct {
	desc      string
	qty       int64
	unitCents int64
}

func item(desc string, qty, unitCents int64) lineSeed { return lineSeed{desc, qty, unitCents} }

func newInvoice(id, customerID, status, issued, due, email string, card PaymentCard, items ...lineSeed) Invoice {
	inv := Invoice{
		ID: id, CustomerID: customerID, Status: status, IssuedOn: issued, DueOn: due,
		Currency: "USD", BillingEmail: email, Payment: card,
		LineItems: make([]LineItem, 0, len(items)),
	}
	var total int64
	for _, it := range items {
		amount := it.qty * it.unitCents
		total += amount
		inv.LineItems = append(inv.LineItems, LineItem{
			Description: it.desc, Quantity: int(it.qty), UnitPrice: money(it.unitCents), Amount: money(amount),
		})
	}
	inv.Total = money(total)
	return inv
}

func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
