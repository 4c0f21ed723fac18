// Placeholder until the chat page lands: copies web/ static files into dist/web.
import { cpSync, existsSync, mkdirSync } from "node:fs";
mkdirSync("dist/web", { recursive: true });
if (existsSync("web/public")) cpSync("web/public", "dist/web", { recursive: true });
