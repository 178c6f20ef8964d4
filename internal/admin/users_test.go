package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
	"gatehouse/internal/identity"
)

func TestUsers(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	const pw1, pw2 = "correct horse battery", "staple gun sandwich"

	var u admin.User
	raw := c.call("POST", "/admin/v1/users", admin.CreateUserRequest{Username: "alice@example.com", Password: pw1, Groups: []string{"support"}}, http.StatusCreated, &u)
	if u.Username != "alice@example.com" || strings.Join(u.Groups, ",") != "support" || u.Disabled {
		t.Errorf("created %+v", u)
	}
	noHash(t, raw, pw1)

	c.call("POST", "/admin/v1/users", admin.CreateUserRequest{Username: "bob", Password: pw1}, http.StatusCreated, &u)
	if u.Groups == nil {
		t.Error("groups should be an empty list, not null")
	}

	var list []admin.User
	raw = c.call("GET", "/admin/v1/users", nil, http.StatusOK, &list)
	if len(list) != 2 || list[0].Username != "alice@example.com" || list[1].Username != "bob" {
		t.Errorf("listed %+v", list)
	}
	noHash(t, raw, pw1)

	raw = c.call("PUT", "/admin/v1/users/bob/password", admin.SetPasswordRequest{Password: pw2}, http.StatusOK, &u)
	noHash(t, raw, pw2)
	stored, err := s.Store.GetUser(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := identity.VerifyPassword(stored.PasswordHash, pw2); !ok || err != nil {
		t.Errorf("the new password does not verify: %v %v", ok, err)
	}

	// PATCH changes only what it is given.
	c.call("PATCH", "/admin/v1/users/alice@example.com", `{"disabled":true}`, http.StatusOK, &u)
	if !u.Disabled || strings.Join(u.Groups, ",") != "support" {
		t.Errorf("after disabling: %+v", u)
	}
	c.call("PATCH", "/admin/v1/users/alice@example.com", `{"groups":["support","admins"]}`, http.StatusOK, &u)
	if !u.Disabled || strings.Join(u.Groups, ",") != "support,admins" {
		t.Errorf("after setting groups: %+v", u)
	}
	c.call("PATCH", "/admin/v1/users/alice@example.com", admin.UpdateUserRequest{Disabled: ptr(false), Groups: &[]string{}}, http.StatusOK, &u)
	if u.Disabled || len(u.Groups) != 0 {
		t.Errorf("after enabling and clearing groups: %+v", u)
	}
	assertNotLogged(t, s, pw1, pw2)
}

// noHash fails if a response shows a password or a hash.
func noHash(t *testing.T, raw []byte, pw string) {
	t.Helper()
	if s := string(raw); strings.Contains(s, "argon2") || strings.Contains(s, "password") || strings.Contains(s, pw) {
		t.Errorf("response shows a password or its hash: %s", raw)
	}
}
