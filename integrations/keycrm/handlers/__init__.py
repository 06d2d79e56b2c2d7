"""The call flow's handlers, collected with `handlers_from`: crm-lookup before dialling, crm-postcall after."""
