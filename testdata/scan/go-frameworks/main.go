package main

import (
	"cmp"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
	"github.com/labstack/echo/v4"
)

func getEnv(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func main() {
	r := gin.Default()
	go r.Run()
	e := echo.New()
	go e.Start(getEnv("LISTEN", "0.0.0.0:1323"))
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	go http.ListenAndServe(":"+port, nil)
	http.ListenAndServe(cmp.Or(os.Getenv("ADMIN"), "127.0.0.1:9999"), nil)
}
