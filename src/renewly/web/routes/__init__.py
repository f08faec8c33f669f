"""One module per resource of the `/v1` API, each with an `APIRouter` named `router`, listed in
renewly.web.app.ROUTERS."""
