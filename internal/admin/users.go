package admin

import (
	"fmt"
	"net/http"
)

func userSubject(name string) string { return fmt.Sprintf("user %q", name) }

func (a *API) listUsers(r *http.Request) (any, error) {
	list, err := a.cfg.Store.ListUsers(r.Context())
	if err != nil {
		return nil, classify(fmt.Errorf("listing users: %w", err), "users")
	}
	out := make([]User, 0, len(list))
	for _, u := range list {
		out = append(out, userFromStore(u))
	}
	return out, nil
}

func (a *API) createUser(r *http.Request) (any, error) {
	var req CreateUserRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	if err := a.cfg.Manager.CreateUser(r.Context(), req.Username, req.Password, req.Groups); err != nil {
		return nil, classify(err, userSubject(req.Username))
	}
	return a.user(r, req.Username)
}

func (a *API) setPassword(r *http.Request) (any, error) {
	name := r.PathValue("username")
	var req SetPasswordRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	if err := a.cfg.Manager.SetPassword(r.Context(), name, req.Password); err != nil {
		return nil, classify(err, userSubject(name))
	}
	return a.user(r, name)
}

func (a *API) updateUser(r *http.Request) (any, error) {
	name := r.PathValue("username")
	var req UpdateUserRequest
	if err := decodeBody(r, &req, false); err != nil {
		return nil, err
	}
	if req.Groups == nil && req.Disabled == nil {
		return nil, badRequest("nothing to change: set groups, disabled or both")
	}
	cur, err := a.cfg.Store.GetUser(r.Context(), name)
	if err != nil {
		return nil, classify(err, userSubject(name))
	}
	groups, disabled := cur.Groups, cur.Disabled
	if req.Groups != nil {
		groups = *req.Groups
	}
	if req.Disabled != nil {
		disabled = *req.Disabled
	}
	if err := a.cfg.Manager.UpdateUser(r.Context(), name, groups, disabled); err != nil {
		return nil, classify(err, userSubject(name))
	}
	return a.user(r, name)
}

// user returns the user as the API shows it: without the password hash.
func (a *API) user(r *http.Request, name string) (User, error) {
	u, err := a.cfg.Store.GetUser(r.Context(), name)
	if err != nil {
		return User{}, classify(err, userSubject(name))
	}
	return userFromStore(u), nil
}
