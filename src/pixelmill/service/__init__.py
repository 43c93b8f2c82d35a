"""The service: the jobs API (:mod:`.app`), served by uvicorn beside worker processes
(``pixelmill serve``)."""
