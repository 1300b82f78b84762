package overview

import (
	"fmt"
	"time"

	"github.com/gatehouse-net/gatehouse/store"
)

// Chart is a bar chart drawn as inline SVG by the template: the layout is
// computed here so the template only places rectangles. The SVG scales to
// its container's width (viewBox), so it fits a 390 px phone.
type Chart struct {
	ID            string // element id prefix, for aria-labelledby
	Title         string
	Desc          string // the numbers in words, for a screen reader
	Width, Height int    // viewBox
	Bars          []Bar
	First, Last   string // axis labels under the first and last bar
	Max           int
}

// Bar is one bucket.
type Bar struct {
	Label      string // the bucket in words, as the bar's tooltip
	N          int
	X, Y, W, H float64
}

const (
	chartWidth  = 300
	chartHeight = 80
)

// hourChart buckets counts into the 24 hours from start (UTC hour), labelled
// in loc.
func hourChart(id, title string, hours []store.HourCount, start time.Time, loc *time.Location) Chart {
	n := make([]int, 24)
	for _, h := range hours {
		i := int(h.Hour.Sub(start) / time.Hour)
		if i >= 0 && i < len(n) {
			n[i] += h.N
		}
	}
	labels := make([]string, len(n))
	for i := range n {
		labels[i] = start.Add(time.Duration(i) * time.Hour).In(loc).Format("15:04")
	}
	return layout(id, title, "hour", labels, n)
}

// dayChart buckets hourly counts into the 30 days (in loc) from start, a
// local midnight.
func dayChart(id, title string, hours []store.HourCount, start time.Time, loc *time.Location) Chart {
	n := make([]int, 30)
	labels := make([]string, len(n))
	for i := range n {
		labels[i] = start.AddDate(0, 0, i).Format("2 Jan")
	}
	for _, h := range hours {
		lt := h.Hour.In(loc)
		day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
		// Whole days between two local midnights, robust to DST (23 or 25 h).
		i := int((day.Sub(start) + 12*time.Hour) / (24 * time.Hour))
		if i >= 0 && i < len(n) {
			n[i] += h.N
		}
	}
	return layout(id, title, "day", labels, n)
}

func layout(id, title, unit string, labels []string, n []int) Chart {
	c := Chart{ID: id, Title: title, Width: chartWidth, Height: chartHeight}
	total, maxAt := 0, 0
	for i, v := range n {
		total += v
		if v > n[maxAt] {
			maxAt = i
		}
	}
	c.Max = n[maxAt]
	if total == 0 {
		c.Desc = fmt.Sprintf("None in any %s.", unit)
	} else {
		c.Desc = fmt.Sprintf("%d in all; the busiest %s was %s with %d.", total, unit, labels[maxAt], c.Max)
	}
	w := float64(chartWidth) / float64(len(n))
	for i, v := range n {
		h := 0.0
		if c.Max > 0 {
			h = float64(v) / float64(c.Max) * (chartHeight - 2)
		}
		if v > 0 && h < 1 {
			h = 1
		}
		c.Bars = append(c.Bars, Bar{Label: fmt.Sprintf("%s: %d", labels[i], v), N: v, X: float64(i) * w, Y: chartHeight - h, W: w * 0.8, H: h})
	}
	c.First, c.Last = labels[0], labels[len(labels)-1]
	return c
}
