"""The dashboard's pages: each module renders one area and posts its forms to `control`."""
