"""The Gemini generateContent dialect: provider side only (no caller speaks it here)."""
