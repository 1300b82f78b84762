package peopleweb

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gatehouse-net/gatehouse/web/httpx"

	"github.com/gatehouse-net/gatehouse/people"
	"github.com/gatehouse-net/gatehouse/store"
	"github.com/gatehouse-net/gatehouse/web"
)

// newPasswordKey carries a just-set password from the POST handler to the
// person page it renders, so it is shown once and never put in a URL.
const newPasswordKey = "peopleweb.newpassword"

// setWiFiPassword sets or resets a person's Wi-Fi password for the network
// role: the one typed, or (left empty) a generated one; the page that
// answers shows it once (the response is no-store, like every page).
func (p *pages) setWiFiPassword(c *httpx.Context, pp store.Person) {
	ctx := c.Request.Context()
	pw := c.PostForm("password")
	v := p.srv.View(c, people.DisplayName(pp))
	status := http.StatusOK
	var err error
	if pp.Username == "" {
		err = errors.New("this person has no username to log in with; the MIS import gives one")
	} else if pw == "" {
		if pw, err = people.GenerateWiFiPassword(); err == nil {
			err = p.svc.SetWiFiPassword(ctx, web.Actor(c), pp.ID, pw)
		}
	} else {
		err = p.svc.SetWiFiPassword(ctx, web.Actor(c), pp.ID, pw)
	}
	switch {
	case err == nil:
		v.Notice = "Wi-Fi password set. It is shown below this once: give it to " + people.DisplayName(pp) + " now."
		c.Set(newPasswordKey, pw)
	case errors.Is(err, store.ErrConflict):
		v.Error, status = "Not done: "+err.Error()+".", http.StatusConflict
	default:
		v.Error, status = "Not done: "+err.Error()+".", http.StatusBadRequest
	}
	p.renderPerson(c, status, v, pp)
}

type selfServiceData struct {
	Username string
	Done     bool
}

func (p *pages) selfServicePage(c *httpx.Context) {
	v := p.srv.View(c, "Change your Wi-Fi password")
	v.Data = selfServiceData{}
	p.srv.Render(c, http.StatusOK, p.t["selfservice"], v)
}

// selfServiceChange changes a person's own Wi-Fi password after checking
// the current one; the limits per person and per address are people's.
func (p *pages) selfServiceChange(c *httpx.Context) {
	v := p.srv.View(c, "Change your Wi-Fi password")
	d := selfServiceData{Username: strings.TrimSpace(c.PostForm("username"))}
	if len(d.Username) > 128 {
		d.Username = ""
	}
	status := http.StatusOK
	newPW := c.PostForm("new")
	switch {
	case newPW != c.PostForm("again"):
		v.Error, status = "The two new passwords are not the same.", http.StatusBadRequest
	default:
		err := p.svc.ChangeOwnWiFiPassword(c.Request.Context(), d.Username, c.PostForm("current"), newPW, web.ClientAddr(c))
		switch {
		case err == nil:
			d.Done = true
			v.Notice = "Your Wi-Fi password is changed. Use the new one next time your devices ask."
		case errors.Is(err, people.ErrTooManyAttempts):
			v.Error, status = "Too many wrong attempts. Wait 15 minutes and try again.", http.StatusTooManyRequests
		case errors.Is(err, people.ErrSelfServiceRefused):
			v.Error, status = "The username or current Wi-Fi password is wrong. If you have never had a Wi-Fi password, ask the network manager for one.", http.StatusUnauthorized
		case errors.Is(err, people.ErrWeakPassword):
			v.Error, status = "The new password must be 10 to 256 characters.", http.StatusBadRequest
		default:
			p.log.Error("peopleweb: self-service Wi-Fi password", "err", err)
			v.Error, status = "The password could not be changed right now. Try again later.", http.StatusInternalServerError
		}
	}
	v.Data = d
	p.srv.Render(c, status, p.t["selfservice"], v)
}
