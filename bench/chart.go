package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// bar is one scenario in the chart: the proxy's throughput as a ratio of
// the bare proxy's, and the issue-6 target for it.
type bar struct {
	label  string
	ratio  float64
	target float64
}

var (
	colWhite  = color.RGBA{255, 255, 255, 255}
	colBlack  = color.RGBA{20, 20, 20, 255}
	colGrid   = color.RGBA{220, 220, 220, 255}
	colMet    = color.RGBA{46, 139, 87, 255}
	colMissed = color.RGBA{205, 92, 92, 255}
	colTarget = color.RGBA{30, 30, 200, 255}
)

// writeChart draws a bar chart of ratios (1.0 = the bare proxy) with each
// bar's target as a blue line, and writes it to path as PNG.
func writeChart(path, title string, bars []bar) error {
	const (
		w, h        = 900, 480
		left, right = 70, 30
		top, bottom = 60, 70
	)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(colWhite), image.Point{}, draw.Src)
	top1 := 1.2
	for _, b := range bars {
		top1 = max(top1, b.ratio*1.1, b.target*1.1)
	}
	plotH := h - top - bottom
	y := func(v float64) int { return h - bottom - int(v/top1*float64(plotH)) }

	for v := 0.0; v <= top1+1e-9; v += 0.2 {
		fill(img, left, y(v), w-right, y(v)+1, colGrid)
		text(img, 10, y(v)+4, fmt.Sprintf("%.1fx", v), colBlack)
	}
	fill(img, left, y(1.0)-1, w-right, y(1.0)+1, colBlack) // the bare proxy

	slot := (w - left - right) / max(1, len(bars))
	for i, b := range bars {
		x0 := left + i*slot + slot/4
		x1 := left + (i+1)*slot - slot/4
		c := colMet
		if b.ratio < b.target {
			c = colMissed
		}
		fill(img, x0, y(b.ratio), x1, y(0), c)
		fill(img, x0-8, y(b.target)-1, x1+8, y(b.target)+2, colTarget)
		text(img, x0, y(b.ratio)-8, fmt.Sprintf("%.2fx", b.ratio), colBlack)
		text(img, x0, h-bottom+18, b.label, colBlack)
		text(img, x0, h-bottom+34, fmt.Sprintf("target >= %.2fx", b.target), colTarget)
	}
	text(img, left, 30, title, colBlack)
	text(img, left, 46, "black line: bare ReverseProxy = 1.0x; green bar: target met, red: missed; blue line: target", colBlack)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
